import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TempDir {
  path: string;
  /** Removes the directory and everything in it; safe to call more than once. */
  cleanup(): Promise<void>;
}

/** A fresh directory under os.tmpdir() named `<prefix>XXXXXX` (mode 0700, as mkdtemp makes it). */
export async function makeTempDir(prefix: string): Promise<TempDir> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    path: dir,
    cleanup: () => fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 3 }),
  };
}
