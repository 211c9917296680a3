import * as fc from 'fast-check';
import * as core from '@mailfront/proxy-core';
import * as imap from '@mailfront/imap';
// Plain JS shared with scripts/fuzz/run.mjs, which runs the same properties a
// million times on the compiled dist (docs/fuzzing.md).
import { imapProperties } from '../../../scripts/fuzz/lib/imap';

const properties: Record<string, fc.IPropertyWithHooks<unknown[]>> = imapProperties({ imap, core });
/** Runs per property: enough to find the usual slips, few enough that the suite stays quick. */
const RUNS: Record<string, number> = { 'login round trip': 3000, 'backend machine': 3000 };

describe('IMAP fuzz (fast-check)', () => {
  for (const [name, property] of Object.entries(properties)) {
    if (name === 'all') continue; // every client property on one input: for the long run
    test(name, () => {
      fc.assert(property, { numRuns: RUNS[name] ?? 2000 });
    });
  }
});
