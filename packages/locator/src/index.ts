export * from './types';
export { createLocator } from './locator';
export { rendezvousPick, rendezvousScore } from './rendezvous';
export { createDirectoryLocator, resolveDirectoryPlacement } from './directory-locator';
export type { DirectoryLocator, DirectoryLocatorOptions, DirectoryLookup, DirectoryPlacement } from './directory-locator';
export { createHealthAwareLocator, placeableWith } from './health-aware-locator';
export type { HealthAwareLocatorOptions, RouteLogger } from './health-aware-locator';
export { HealthBook, breakerPhase, onResult, loginVerdict, CLOSED } from './health';
export type {
  Breaker,
  BreakerChange,
  BreakerOptions,
  BreakerPhase,
  FailureCounts,
  HealthBookOptions,
  HealthView,
  LoginVerdict,
  ProbeState,
  ProtocolHealth,
  ResultSource,
} from './health';
