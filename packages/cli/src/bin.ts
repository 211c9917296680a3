#!/usr/bin/env node
import { runCli } from './program';

runCli(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }).then(
  (code) => {
    // exitCode rather than exit(): let stdout drain when it is a pipe.
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mailfront: internal error: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
