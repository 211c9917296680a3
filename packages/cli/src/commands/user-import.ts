import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { canonicalUserName, hashPassword } from '@mailfront/auth';
import type { CliContext } from '../context';
import { CsvError, parseCsv } from '../csv';
import { CommandFailed } from '../io';
import { existingFile } from '../options';

interface Options {
  json?: boolean;
}

interface Row {
  line: number;
  user: string;
  password: string;
  backend: string | null;
}

interface Refused {
  line: number;
  /** The user name when the line got that far; never the password. */
  user: string | null;
  error: string;
}

/**
 * Hashes at once: scrypt runs on libuv's thread pool (4 threads by default),
 * so this many keep it busy without queueing thousands of 64 MiB jobs.
 */
const HASH_CONCURRENCY = 4;

export function register(user: Command, ctx: CliContext): void {
  user
    .command('import')
    .description('add users from a CSV file: user,password[,backend] per line')
    .argument('<file>', 'CSV (RFC 4180: quote fields with commas or quotes; an optional header line user,password[,backend])')
    .option('--json', 'print {imported, refused: [{line, user, error}]} as JSON')
    .addHelpText(
      'after',
      `
Each good line adds a user (the password stored as an scrypt hash, the backend
assigned when the third column is not empty); a bad line is reported with its
line number and skipped: an existing user, a duplicate in the file, a bad
name, an empty password, an unknown backend. Passwords never appear in any
output. Progress goes to stderr when it is a terminal; a summary always ends
the run. Exit 1 if any line was refused. Keep the file mode 0600 and delete it
afterwards: it holds passwords in clear.`,
    )
    .action(async (file: string, opts: Options) => {
      const path = existingFile('<file>', file, ctx.io.cwd);
      if ((statSync(path).mode & 0o077) !== 0) ctx.note(`${file} is readable by others, and it holds passwords: chmod 600 it`);
      let records;
      const refused: Refused[] = [];
      try {
        records = parseCsv(readFileSync(path, 'utf8'));
      } catch (e) {
        // The line, never its text: it may hold a password.
        if (e instanceof CsvError) throw new CommandFailed(`${file}:${e.line}: ${e.message}; nothing imported`);
        throw e;
      }
      const first = records[0]?.fields.map((f) => f.trim().toLowerCase());
      if (first && first[0] === 'user' && first[1] === 'password') records.shift();

      const imported = await ctx.withStore(async (store) => {
        const backends = new Set((await store.listBackends()).map((b) => b.name));
        const seen = new Set<string>();
        const rows: Row[] = [];
        for (const r of records) {
          const refuse = (error: string, userName: string | null = null) => refused.push({ line: r.line, user: userName, error });
          if (r.fields.length < 2 || r.fields.length > 3) {
            refuse(`expected 2 or 3 columns (user,password[,backend]), got ${r.fields.length}`);
            continue;
          }
          let name: string;
          try {
            name = canonicalUserName(r.fields[0]!);
          } catch (e) {
            refuse(e instanceof Error ? e.message : String(e));
            continue;
          }
          const password = r.fields[1]!;
          const backend = r.fields[2]?.trim() || null;
          if (password === '') refuse('empty password', name);
          else if (seen.has(name)) refuse('the user is on an earlier line too', name);
          else if (backend !== null && !backends.has(backend)) refuse(`backend ${backend} does not exist`, name);
          else if (await store.getUser(name)) refuse('the user exists (change a password with mailfront user passwd)', name);
          else rows.push({ line: r.line, user: name, password, backend });
          seen.add(name);
        }

        const tty = (ctx.io.stderr as { isTTY?: boolean }).isTTY === true;
        let done = 0;
        const progress = () => {
          if (tty) ctx.io.stderr.write(`\rmailfront: importing ${done}/${rows.length}`);
        };
        progress();
        let next = 0;
        let added = 0;
        const worker = async () => {
          while (next < rows.length) {
            const row = rows[next++]!;
            const hash = await hashPassword(row.password);
            try {
              await store.addUser(row.user, hash);
              if (row.backend !== null) await store.setPlacement(row.user, row.backend, 'assigned');
              added++;
            } catch (e) {
              refused.push({ line: row.line, user: row.user, error: e instanceof Error ? e.message : String(e) });
            }
            done++;
            progress();
          }
        };
        await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, rows.length) }, worker));
        if (tty && rows.length > 0) ctx.io.stderr.write('\n');
        return added;
      });

      refused.sort((a, b) => a.line - b.line);
      if (opts.json) ctx.json({ imported, refused });
      else {
        for (const r of refused) ctx.note(`${file}:${r.line}: ${r.user ? `${r.user}: ` : ''}${r.error}`);
        ctx.out(`imported ${imported} user${imported === 1 ? '' : 's'} from ${file}${refused.length ? `; ${refused.length} line${refused.length === 1 ? '' : 's'} refused` : ''}`);
      }
      if (refused.length > 0) throw new CommandFailed(`${refused.length} line${refused.length === 1 ? '' : 's'} of ${file} refused`);
    });
}
