export { startServer, type RunningServer, type StartOptions } from './server';
export { loadConfig, validateConfig, ConfigError, DEFAULT_CONFIG, type MailfrontConfig, type ListenerConfig, type LoadedConfig } from './config';
export { openStoreFromConfig } from './open-store';
export { generateSelfSigned, generateCa, issueCertificate, ensureSelfSigned, type PemPair } from './certs';
export { buildAccessServices, ldapDirectoryFromConfig, type AccessServices } from './directory';
export { DEFAULT_LDAP_FILTER, LDAP_DEFAULTS, type AuthSource, type LdapConfig } from './config';
export { type BackendStatus } from './backend-health';
export { checkBackendPort, GREETINGS, HealthChecker, type CheckResult } from './health-checker';
