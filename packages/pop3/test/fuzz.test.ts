import * as fc from 'fast-check';
import * as core from '@mailfront/proxy-core';
import * as pop3 from '@mailfront/pop3';
// Plain JS shared with scripts/fuzz/run.mjs, which runs the same properties a
// million times on the compiled dist (docs/fuzzing.md).
import { pop3Properties } from '../../../scripts/fuzz/lib/pop3';

const properties: Record<string, fc.IPropertyWithHooks<unknown[]>> = pop3Properties({ pop3, core });
/** Runs per property: enough to find the usual slips, few enough that the suite stays quick. */
const RUNS: Record<string, number> = { 'login round trip': 3000, 'backend machine': 3000 };

describe('POP3 fuzz (fast-check)', () => {
  for (const [name, property] of Object.entries(properties)) {
    if (name === 'all') continue; // every client property on one input: for the long run
    test(name, () => {
      fc.assert(property, { numRuns: RUNS[name] ?? 2000 });
    });
  }
});
