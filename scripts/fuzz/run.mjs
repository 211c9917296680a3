#!/usr/bin/env node
/**
 * `pnpm fuzz`: the fuzz properties of the jest suites (scripts/fuzz/lib),
 * run a million times per protocol on the compiled dist. A long run, not a
 * test: CI runs the same properties a few thousand times in `pnpm test`.
 * See docs/fuzzing.md for what each property checks.
 *
 *   node scripts/fuzz/run.mjs [--runs N] [--protocol imap,pop3,submission,proxy,core]
 *                             [--property NAME] [--seed S] [--no-build]
 *
 * --runs N       inputs for each protocol's main property (default 1000000);
 *                the others get a share of N (see WEIGHTS)
 * --protocol X   some of: imap, pop3, submission, proxy (PROXY header),
 *                core (LineBuffer, LineReader, SASL); default all
 * --property P   only the properties whose name contains P
 * --seed S       the first batch's seed (default: from the clock); batch k
 *                uses S + k, so a failure is replayed with the seed printed
 * --no-build     use packages/{proxy-core,imap,pop3,submission}/dist as they are
 *
 * It prints, per property, inputs, failures, time and inputs/s, and the
 * peak RSS of the process; for a failure, the shrunk counterexample and what
 * broke. Exit 1 if any property failed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const require = createRequire(import.meta.url);

const GROUPS = ['imap', 'pop3', 'submission', 'proxy', 'core'];
/** Runs of each property as a share of --runs: the main property of a protocol gets them all. */
const WEIGHTS = {
  imap: { all: 1, 'login round trip': 0.25, 'backend machine': 0.25 },
  pop3: { all: 1, 'login round trip': 0.25, 'backend machine': 0.25 },
  submission: { all: 1, 'login round trip': 0.25, 'backend machine': 0.25 },
  proxy: { 'PROXY no throw': 1, 'PROXY chunking': 1, 'PROXY round trip': 0.25 },
  core: {
    'LineBuffer chunking and memory': 0.25,
    'LineBuffer round trip': 0.1,
    'LineReader chunking and memory': 0.25,
    'LineReader literals': 0.1,
    'base64 strict': 0.1,
    'SASL PLAIN': 0.1,
  },
};
/** Inputs per fc.check call: progress is printed between batches, each with its own seed. */
const BATCH = 20_000;

function parseArgs(argv) {
  const o = { runs: 1_000_000, groups: GROUPS, property: null, seed: Date.now() % 2 ** 31, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === '--no-build') o.build = false;
    else if (a.startsWith('--runs')) o.runs = positiveInt(a, value());
    else if (a.startsWith('--seed')) o.seed = Number.parseInt(value(), 10) | 0;
    else if (a.startsWith('--property')) o.property = value();
    else if (a.startsWith('--protocol')) {
      o.groups = value().split(',').filter(Boolean);
      for (const g of o.groups) if (!GROUPS.includes(g)) usage(`--protocol: ${g} is not one of ${GROUPS.join(', ')}`);
    } else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').match(/\/\*\*([\s\S]*?)\*\//)[1].replace(/^ \* ?/gm, ''));
      process.exit(0);
    } else usage(`unknown argument ${a}`);
  }
  return o;
}

function positiveInt(flag, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`${flag}: ${v} is not a positive integer`);
  return n;
}

function usage(msg) {
  console.error(`fuzz: ${msg} (see --help)`);
  process.exit(2);
}

function build() {
  // Only what the properties load: the whole workspace may be mid-change elsewhere.
  const tsc = path.join(ROOT, 'node_modules/.bin/tsc');
  const r = spawnSync(tsc, ['-b', 'packages/imap', 'packages/pop3', 'packages/submission'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('fuzz: the build failed');
    process.exit(1);
  }
}

function loadProperties(groups) {
  const dist = (name) => require(path.join(ROOT, 'packages', name, 'dist/index.js'));
  const fc = require('fast-check');
  const core = dist('proxy-core');
  const out = {};
  for (const g of groups) {
    if (g === 'imap') out[g] = require('./lib/imap.js').imapProperties({ imap: dist('imap'), core });
    if (g === 'pop3') out[g] = require('./lib/pop3.js').pop3Properties({ pop3: dist('pop3'), core });
    if (g === 'submission') out[g] = require('./lib/submission.js').submissionProperties({ submission: dist('submission'), core });
    if (g === 'proxy' || g === 'core') {
      const all = require('./lib/proxy-core.js').proxyCoreProperties({ core });
      out[g] = Object.fromEntries(Object.entries(all).filter(([name]) => name in WEIGHTS[g]));
    }
  }
  return { fc, properties: out };
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const mib = (kib) => (kib / 1024).toFixed(0);

function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.build) build();
  const { fc, properties } = loadProperties(o.groups);
  console.log(`fuzz: seed ${o.seed}, --runs ${fmt(o.runs)}, node ${process.version}, ${new Date().toISOString()}`);
  const started = process.hrtime.bigint();
  const rows = [];
  let batchIndex = 0;
  let failed = false;
  for (const g of o.groups) {
    for (const [name, weight] of Object.entries(WEIGHTS[g])) {
      if (o.property && !name.includes(o.property)) continue;
      const property = properties[g][name];
      if (!property) throw new Error(`no property ${g}/${name}`);
      const total = Math.max(1, Math.round(o.runs * weight));
      const t0 = process.hrtime.bigint();
      let done = 0;
      let failures = 0;
      while (done < total) {
        const numRuns = Math.min(BATCH, total - done);
        const seed = (o.seed + batchIndex++) | 0;
        const r = fc.check(property, { numRuns, seed });
        done += r.numRuns;
        if (r.failed) {
          failures++;
          failed = true;
          console.log(`\n✗ ${g} / ${name}: failed after ${r.numRuns} inputs of the batch with seed ${seed} (path ${r.counterexamplePath})`);
          console.log(`  replay: fc.assert(property, { seed: ${seed}, path: ${JSON.stringify(r.counterexamplePath)} })`);
          console.log(`  counterexample (shrunk ${r.numShrinks} times): ${fc.stringify(r.counterexample)}`);
          console.log(`  ${String(r.errorInstance?.message ?? r.error).split('\n').join('\n  ')}`);
          break;
        }
        if (process.stdout.isTTY) {
          const s = Number(process.hrtime.bigint() - t0) / 1e9;
          process.stdout.write(`\r  ${g} / ${name}: ${fmt(done)} of ${fmt(total)}, ${fmt(done / s)}/s   `);
        }
      }
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const peak = process.resourceUsage().maxRSS;
      rows.push({ g, name, inputs: done, failures, secs, rate: done / secs, peak });
      process.stdout.write(`${process.stdout.isTTY ? '\r' : ''}  ${g} / ${name}: ${fmt(done)} inputs, ${failures} failed, ${secs.toFixed(1)} s, ${fmt(done / secs)}/s, peak RSS ${mib(peak)} MiB\n`);
    }
  }
  const totalSecs = Number(process.hrtime.bigint() - started) / 1e9;
  console.log('\n| protocol | property | inputs | failed | time (s) | inputs/s |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.g} | ${r.name} | ${fmt(r.inputs)} | ${r.failures} | ${r.secs.toFixed(1)} | ${fmt(r.rate)} |`);
  for (const g of o.groups) {
    const mine = rows.filter((r) => r.g === g);
    if (mine.length === 0) continue;
    const inputs = mine.reduce((a, r) => a + r.inputs, 0);
    const secs = mine.reduce((a, r) => a + r.secs, 0);
    console.log(`${g}: ${fmt(inputs)} inputs in ${secs.toFixed(0)} s (${fmt(inputs / secs)}/s)`);
  }
  console.log(`peak RSS ${mib(process.resourceUsage().maxRSS)} MiB; total ${(totalSecs / 60).toFixed(1)} min; ${failed ? 'FAILED' : 'no failures'}`);
  process.exit(failed ? 1 : 0);
}

main();
