export { startRelay } from './relay';
export type { Relay, RelayOptions, RelayResult, RelayEnd, RelaySide } from './relay';
