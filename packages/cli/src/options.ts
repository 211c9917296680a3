import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './io';

/** Commander argument parser for a TCP port a backend listens on. */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new InvalidArgumentError('must be a port number 1-65535.');
  }
  return n;
}

/** Commander argument parser for a positive whole number (days, counts). */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('must be a positive whole number.');
  }
  return n;
}

/** An existing regular file named on the command line, as an absolute path. */
export function existingFile(option: string, value: string, cwd: string): string {
  const path = resolve(cwd, value);
  if (!existsSync(path)) throw new UsageError(`${option} ${value}: no such file`);
  if (!statSync(path).isFile()) throw new UsageError(`${option} ${value}: not a regular file`);
  return path;
}

/** Commander argument parser for a whole number ≥ 0 (milliseconds where 0 means "at once"). */
export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('must be a whole number ≥ 0.');
  }
  return n;
}
