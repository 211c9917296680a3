import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { generateSelfSigned, type PemPair } from '@mailfront/server';
import type { CliContext } from '../context';
import { CommandFailed, UsageError } from '../io';
import { parsePositiveInt } from '../options';

const CERT_FILE = 'cert.pem';
const KEY_FILE = 'key.pem';

interface Options {
  hostname: string[];
  out?: string;
  days?: number;
  force?: boolean;
}

/**
 * Write to a temporary name and rename, so that a reader (a server starting
 * up) never sees half a file; the mode is set before the rename, so the key
 * is never readable by others, whatever the umask.
 */
function writeAtomic(path: string, body: string, mode: number): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, body, { mode, flag: 'wx' });
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function makePair(hostnames: string[], days: number | undefined): PemPair {
  try {
    return generateSelfSigned(days !== undefined ? { hostnames, days } : { hostnames });
  } catch (err) {
    // certs.ts throws TypeError/RangeError for names and days it cannot use.
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
}

export function register(cert: Command, ctx: CliContext): void {
  cert
    .command('generate')
    .description('write a self-signed certificate (cert.pem, mode 0644) and its private key (key.pem, mode 0600)')
    .addOption(
      new Option('--hostname <name>', 'DNS name or IP address for the certificate; repeat for more, the first is the subject')
        .argParser((v: string, acc: string[]) => [...acc, v])
        .default([] as string[], 'hostname from the config'),
    )
    .option('--out <dir>', 'directory to write to, created if missing (default: <dataDir>/tls from the config)')
    .option('--days <n>', 'validity in days (default: 825)', parsePositiveInt)
    .option('--force', 'replace existing cert.pem and key.pem (default: refuse)')
    .addHelpText(
      'after',
      `
To use the files, point the config at them:
  tls:
    cert: <dir>/cert.pem
    key: <dir>/key.pem
Without tls in the config, \`serve\` makes its own self-signed pair in <dataDir>/tls.`,
    )
    .action((opts: Options) => {
      // The config is read only for what the options leave open.
      const hostnames = opts.hostname.length > 0 ? opts.hostname : [ctx.config.hostname];
      const dir = opts.out !== undefined ? resolve(ctx.io.cwd, opts.out) : join(ctx.config.dataDir, 'tls');
      const pair = makePair(hostnames, opts.days);
      const certPath = join(dir, CERT_FILE);
      const keyPath = join(dir, KEY_FILE);
      if (!opts.force) {
        for (const p of [certPath, keyPath]) if (existsSync(p)) throw new CommandFailed(`${p} exists; use --force to replace it`);
      }
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // Key first, so that a certificate on disk always has its key beside it.
      writeAtomic(keyPath, pair.key, 0o600);
      writeAtomic(certPath, pair.cert, 0o644);
      ctx.out(`wrote ${certPath}\nwrote ${keyPath}\nself-signed for ${hostnames.join(', ')}`);
    });
}
