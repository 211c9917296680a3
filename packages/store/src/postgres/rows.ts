import { rowReaders, type BackendRecord, type PlacementRecord, type UserRecord } from '../records';

/** Rows as pg returns them: snake_case, real booleans, TIMESTAMPTZ as Date. */
export type PgBackendRecord = BackendRecord<boolean, Date>;
export type PgUserRecord = UserRecord<Date>;
export type PgPlacementRecord = PlacementRecord<Date>;

// Times are written from JavaScript Dates (millisecond precision), so
// toISOString gives back exactly the string the SQLite store would hold.
export const { toBackendRow, toUserRow, toPlacementRow } = rowReaders<boolean, Date>({ bool: (v) => v, time: (v) => v.toISOString() });
