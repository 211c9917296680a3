import { rowReaders, type BackendRecord as Backend, type PlacementRecord as Placement, type UserRecord as User } from '../records';

/** Rows as SQLite returns them: snake_case, booleans as 0/1, times as ISO text. */
export type BackendRecord = Backend<number, string>;
export type UserRecord = User<string>;
export type PlacementRecord = Placement<string>;

export const { toBackendRow, toUserRow, toPlacementRow } = rowReaders<number, string>({ bool: (v) => v === 1, time: (v) => v });
