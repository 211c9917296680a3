import { readFileSync } from 'node:fs';
import {
  createBackendAuthenticator,
  createLdapAuthenticator,
  createStoreAuthenticator,
  LdapDirectory,
  type Authenticator,
} from '@mailfront/auth';
import { createDirectoryLocator, createLocator, type Locator } from '@mailfront/locator';
import type { Store } from '@mailfront/store';
import { ConfigError, type LdapConfig, type MailfrontConfig } from './config';

/**
 * The first line of a secret file. The message names the key and the file,
 * never the content.
 */
function readSecret(key: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(key, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const secret = text.split(/\r?\n/, 1)[0] ?? '';
  // An empty service password is an anonymous bind (RFC 4513 §5.1.2), not a login.
  if (secret === '') throw new ConfigError(key, `${file} is empty: the first line must be the password`);
  return secret;
}

/** The directory the `ldap` section describes. Reads bindPasswordFile and caFile; throws ConfigError naming the key. */
export function ldapDirectoryFromConfig(ldap: LdapConfig): LdapDirectory {
  let ca: Buffer | undefined;
  if (ldap.caFile !== null) {
    try {
      ca = readFileSync(ldap.caFile);
    } catch (err) {
      throw new ConfigError('ldap.caFile', `cannot read ${ldap.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return new LdapDirectory({
    urls: ldap.urls,
    startTls: ldap.startTls,
    ca,
    bindDn: ldap.bindDn ?? undefined,
    bindPassword: ldap.bindPasswordFile !== null ? readSecret('ldap.bindPasswordFile', ldap.bindPasswordFile) : undefined,
    baseDn: ldap.baseDn ?? undefined,
    scope: ldap.scope,
    filter: ldap.filter ?? undefined,
    dnTemplate: ldap.dnTemplate ?? undefined,
    userAttribute: ldap.userAttribute,
    attributes: ldap.placementAttribute !== null ? [ldap.placementAttribute] : [],
    connectTimeoutMs: ldap.connectTimeoutMs,
    timeoutMs: ldap.timeoutMs,
    poolSize: ldap.poolSize,
  });
}

export interface AccessServices {
  auth: Authenticator;
  locator: Locator;
  /** The directory, when an `ldap` section is configured. */
  directory: LdapDirectory | null;
  /** Close directory connections. */
  close(): void;
}

/**
 * Who may log in (auth.source) and where they go: the store's placement,
 * or, with an `ldap` section whose placementAttribute is set, the
 * directory's attribute first and the store's placement when it is empty.
 * The directory locator also serves auth sources that read no directory
 * (sqlite, backend): it then looks the user up by name.
 */
export function buildAccessServices(config: MailfrontConfig, store: Store): AccessServices {
  const directory = config.ldap ? ldapDirectoryFromConfig(config.ldap) : null;
  let auth: Authenticator;
  switch (config.auth.source) {
    case 'sqlite':
      auth = createStoreAuthenticator(store, { cacheTtlMs: config.auth.cacheTtlMs, cacheMaxEntries: config.auth.cacheMaxEntries });
      break;
    case 'ldap':
      // validateConfig requires the ldap section for this source.
      auth = createLdapAuthenticator(directory!, { cacheTtlMs: config.auth.cacheTtlMs, cacheMaxEntries: config.auth.cacheMaxEntries });
      break;
    case 'backend':
      auth = createBackendAuthenticator();
      break;
  }
  let locator: Locator = createLocator(store);
  const attribute = config.ldap?.placementAttribute ?? null;
  if (directory && attribute !== null) {
    locator = createDirectoryLocator({
      store,
      fallback: locator,
      attribute,
      lookup: async (user) => (await directory.lookup(user))?.attributes,
      positiveTtlMs: config.ldap!.cache.positiveTtlMs,
      negativeTtlMs: config.ldap!.cache.negativeTtlMs,
    });
  }
  return { auth, locator, directory, close: () => directory?.close() };
}
