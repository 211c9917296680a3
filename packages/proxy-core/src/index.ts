export * from './errors';
export * from './protocol';
export * from './limits';
export * from './sanitize';
export { createLogger, type Logger, type LogFormat } from './log';
export { LineReader, LineTooLong } from './line-reader';
export { loginToBackend, BackendLoginError, type BackendLoginOptions, type BackendLoginSuccess } from './backend';
export { SessionDriver, newSessionId, type ProxyServices, type ListenerPolicy, type ListenerTls, type Peer } from './session-driver';
export type { ProxyEvents, LoginEvent, SessionEndEvent } from './events';
export { SessionRegistry, QUIET_MS, type SessionInfo, type SessionHandle, type SessionPhase } from './registry';
export { createListener, type Listener, type ListenerSpec, type ProxyProtocolPolicy } from './listener';
export {
  staticTlsProvider,
  sniTlsProvider,
  type CertificatePair,
  type SniTlsOptions,
  alpnSelector,
  backendTlsOptions,
  reloadBackendCas,
  upgradeServerSocket,
  type ClientTlsProvider,
} from './tls';
export * from './sasl';
export { normalizeAddress } from './address';
export * from './proxy-protocol';
export { PenaltyBox, addressBlock, type PenaltyOptions, type PenaltyKey } from './penalty';
export { StepSession, type Transition, type ResumableParser } from './step-session';
export { LineBuffer, LineCommandParser, type NextLine } from './line-buffer';
export { ConnectionGate } from './connection-gate';
