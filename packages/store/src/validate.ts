import { PROTOCOLS, StoreError } from './types';
import type { BackendLoginMode, BackendPatch, BackendState, BackendTlsMode, NewBackend, PlacementSource } from './types';

// Shared by every Store implementation: what a store accepts must not depend
// on which database sits behind it. The SQL constraints are a second line.

const TLS_MODES: readonly BackendTlsMode[] = ['none', 'starttls', 'implicit'];
const LOGIN_MODES: readonly BackendLoginMode[] = ['passthrough', 'master'];
const STATES: readonly BackendState[] = ['active', 'draining'];
const SOURCES: readonly PlacementSource[] = ['assigned', 'hashed'];

// C0, DEL and C1: such names would break log lines and protocol commands.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function invalid(message: string): StoreError {
  return new StoreError('invalid', message);
}

export function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${what} must be a non-empty string`);
  if (CONTROL.test(value)) throw invalid(`${what} must not contain control characters`);
  return value;
}

export function checkBackendState(state: unknown): BackendState {
  if (!STATES.includes(state as BackendState)) throw invalid(`backend state must be one of ${STATES.join(', ')}`);
  return state as BackendState;
}

export function checkPlacementSource(source: unknown): PlacementSource {
  if (!SOURCES.includes(source as PlacementSource)) throw invalid(`placement source must be one of ${SOURCES.join(', ')}`);
  return source as PlacementSource;
}

/** Checks a NewBackend from an untyped caller (CLI, admin API JSON) before it reaches SQL. */
export function checkNewBackend(b: NewBackend): void {
  checkName('backend name', b.name);
  checkName('backend host', b.host);
  if (/\s/.test(b.host)) throw invalid('backend host must not contain whitespace');
  if (typeof b.ports !== 'object' || b.ports === null) throw invalid('backend ports are missing');
  for (const p of PROTOCOLS) {
    const port = b.ports[p];
    if (port !== null && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
      throw invalid(`backend ${p} port must be an integer 1-65535 or null`);
    }
  }
  if (!TLS_MODES.includes(b.tls)) throw invalid(`backend tls must be one of ${TLS_MODES.join(', ')}`);
  if (b.caFile !== null && (typeof b.caFile !== 'string' || b.caFile.length === 0)) {
    throw invalid('backend caFile must be a non-empty path or null');
  }
  if (typeof b.insecure !== 'boolean') throw invalid('backend insecure must be a boolean');
  if (typeof b.trusted !== 'boolean') throw invalid('backend trusted must be a boolean');
  if (!LOGIN_MODES.includes(b.login)) throw invalid(`backend login must be one of ${LOGIN_MODES.join(', ')}`);
  for (const [field, value] of [['masterUser', b.masterUser], ['masterPassword', b.masterPassword]] as const) {
    if (value !== null && typeof value !== 'string') throw invalid(`backend ${field} must be a string or null`);
    if (b.login === 'master' && !value) throw invalid(`backend login 'master' needs ${field}`);
  }
  if (b.state !== undefined) checkBackendState(b.state);
  checkStandby(b.name, b.standby);
  if (b.proxyProtocol !== undefined && typeof b.proxyProtocol !== 'boolean') throw invalid('backend proxyProtocol must be a boolean');
}

function checkStandby(name: string, standby: unknown): void {
  if (standby === undefined || standby === null) return;
  checkName('backend standby', standby);
  if (standby === name) throw invalid(`backend ${name} cannot be its own standby`);
}

const PATCH_KEYS: ReadonlyArray<keyof BackendPatch> = ['standby', 'proxyProtocol'];

/** Checks a BackendPatch from an untyped caller: only known keys, each of its type. */
export function checkBackendPatch(name: string, patch: BackendPatch): void {
  if (typeof patch !== 'object' || patch === null) throw invalid('backend patch must be an object');
  for (const k of Object.keys(patch)) {
    if (!PATCH_KEYS.includes(k as keyof BackendPatch)) throw invalid(`backend ${k} cannot be changed in place (changeable: ${PATCH_KEYS.join(', ')})`);
  }
  checkStandby(name, patch.standby);
  if (patch.proxyProtocol !== undefined && typeof patch.proxyProtocol !== 'boolean') throw invalid('backend proxyProtocol must be a boolean');
}
