export { freePort, freePorts } from './ports';
export { makeTempDir, type TempDir } from './tmp';
export { AUDIT_DIR_ENV, auditLogFile, recordSecrets } from './secrets-audit';
export {
  startDovecot,
  DovecotStartError,
  type Dovecot,
  type DovecotOptions,
  type DovecotPorts,
  type DovecotProtocol,
  type DovecotUser,
} from './dovecot';
export { startSlapd, sshaPassword, SlapdStartError, type Slapd, type SlapdOptions, type SlapdUser } from './slapd';
export { startPostgres, PostgresStartError, type Postgres, type PostgresOptions } from './postgres';
export {
  rawConnect,
  BufferedPlaintextError,
  type RawClient,
  type RawConnectOptions,
  type StartTlsOptions,
} from './imap-client';
export { runPython, type PythonOptions, type PythonResult } from './python';
export { startSmtpSink, type SmtpSink, type SinkMessage } from './smtp-sink';
export { backendRow, loginContext, newBackend, runBackendMachine } from './fixtures';
