import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { CliIo } from './io';
import { CommandFailed, UsageError } from './io';

/** A pasted password is a few hundred bytes; more on stdin is the wrong input. */
const MAX_SECRET_BYTES = 64 * 1024;

type Stdin = CliIo['stdin'] & { setRawMode?: (raw: boolean) => unknown };

function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? '';
}

function refuseEmpty(secret: string, where: string): string {
  if (secret === '') throw new UsageError(`empty password${where ? ` ${where}` : ''} refused`);
  return secret;
}

/**
 * The first line of a secret file (password, master password). The rest of
 * the file is ignored, so a trailing newline is not part of the secret.
 */
export function readSecretFile(option: string, file: string, cwd: string): string {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.code ?? 'unreadable';
    throw new UsageError(`${option} ${file}: ${why}`);
  }
  // The message names the option, never the content.
  return refuseEmpty(firstLine(text), `in ${option} ${file}`);
}

/** The first line of a non-interactive stdin (`echo pw | mailfront user add …`). */
function readStdinLine(stdin: Stdin): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const decoder = new StringDecoder('utf8');
    let text = '';
    const finish = (fn: () => void) => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.removeListener('error', onError);
      stdin.pause();
      fn();
    };
    const onData = (chunk: Buffer | string) => {
      text += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      if (/\r?\n/.test(text)) finish(() => resolvePromise(firstLine(text)));
      else if (text.length > MAX_SECRET_BYTES) finish(() => reject(new UsageError('no end of line in the first 64 KiB of stdin')));
    };
    const onEnd = () => {
      text += decoder.end();
      finish(() => resolvePromise(firstLine(text)));
    };
    const onError = (err: Error) => finish(() => reject(new CommandFailed(`cannot read stdin: ${err.message}`)));
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
    stdin.resume();
  });
}

/**
 * Read one line from a terminal with echo off. Raw mode hands us every key:
 * Enter ends, Backspace and Ctrl-U edit, Ctrl-C aborts.
 */
export function promptHidden(io: CliIo, prompt: string): Promise<string> {
  const stdin = io.stdin as Stdin;
  if (typeof stdin.setRawMode !== 'function') {
    return Promise.reject(new CommandFailed('stdin is a terminal but echo cannot be turned off; use --password-file'));
  }
  io.stderr.write(prompt);
  stdin.setRawMode(true);
  return new Promise((resolvePromise, reject) => {
    const decoder = new StringDecoder('utf8');
    let secret = '';
    const finish = (fn: () => void) => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.setRawMode!(false);
      stdin.pause();
      io.stderr.write('\n');
      fn();
    };
    const onData = (chunk: Buffer | string) => {
      const s = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const chars = Array.from(s);
      for (let i = 0; i < chars.length; i++) {
        const ch = chars[i]!;
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          // Pasted input can hold the next answer too (the retyped password): keep it for the next read.
          const rest = chars.slice(i + 1).join('').replace(/^\n/, '');
          return finish(() => {
            if (rest) stdin.unshift(Buffer.from(rest, 'utf8'));
            resolvePromise(secret);
          });
        }
        if (ch === '\u0003') return finish(() => reject(new CommandFailed('interrupted')));
        if (ch === '\u007f' || ch === '\b') secret = Array.from(secret).slice(0, -1).join('');
        else if (ch === '\u0015') secret = '';
        // An escape sequence (arrow keys) arrives in one chunk: drop the rest of it.
        else if (ch === '\u001b') break;
        else if (ch >= ' ') secret += ch;
      }
    };
    const onEnd = () => finish(() => resolvePromise(secret));
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

/**
 * An existing password, to check it (`ldap test`): from `file` (first line),
 * else typed once without echo on a terminal, or the first line of a pipe.
 */
export async function readPassword(io: CliIo, file: string | undefined): Promise<string> {
  if (file !== undefined) return readSecretFile('--password-file', file, io.cwd);
  if (io.stdin.isTTY) return refuseEmpty(await promptHidden(io, 'Password: '), '');
  return refuseEmpty(await readStdinLine(io.stdin as Stdin), 'on stdin');
}

/**
 * A new password: from `file` (first line), else from stdin: typed twice
 * without echo on a terminal, or the first line of a pipe. Never empty.
 */
export async function readNewPassword(io: CliIo, file: string | undefined): Promise<string> {
  if (file !== undefined) return readSecretFile('--password-file', file, io.cwd);
  if (io.stdin.isTTY) {
    const first = refuseEmpty(await promptHidden(io, 'Password: '), '');
    const again = await promptHidden(io, 'Password (again): ');
    if (first !== again) throw new CommandFailed('the passwords do not match');
    return first;
  }
  return refuseEmpty(await readStdinLine(io.stdin as Stdin), 'on stdin');
}
