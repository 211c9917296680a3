import { loadConfig, openStoreFromConfig, type LoadedConfig, type MailfrontConfig } from '@mailfront/server';
import type { Store } from '@mailfront/store';
import { json } from './format';
import type { CliIo } from './io';

/** Global options, as commander parsed them. */
export interface GlobalOptions {
  config?: string;
  debug?: boolean;
}

/**
 * What every command gets: the streams, the global options, and the config
 * and store, loaded on first use (so `--help` and `cert generate --out …
 * --hostname …` work without a config).
 */
export class CliContext {
  private loaded: LoadedConfig | undefined;

  constructor(
    readonly io: CliIo,
    private readonly globals: () => GlobalOptions,
  ) {}

  get debug(): boolean {
    return this.globals().debug === true;
  }

  /** Throws ConfigError, which the runner turns into exit status 2. */
  loadConfig(): LoadedConfig {
    this.loaded ??= this.reloadConfig();
    return this.loaded;
  }

  /** Read the config file again (serve's SIGHUP); throws ConfigError, and then keeps the last good one. */
  reloadConfig(): LoadedConfig {
    this.loaded = loadConfig({ file: this.globals().config, env: this.io.env, cwd: this.io.cwd });
    return this.loaded;
  }

  get config(): MailfrontConfig {
    return this.loadConfig().config;
  }

  /** Open the configured store for the length of `fn`. */
  async withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    const store = await openStoreFromConfig(this.config);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  json(value: unknown): void {
    this.io.stdout.write(json(value));
  }

  /** A note for the human at the terminal: stderr, so that stdout stays parseable. */
  note(text: string): void {
    this.io.stderr.write(`mailfront: ${text}\n`);
  }
}
