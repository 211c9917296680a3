import * as fc from 'fast-check';
import * as core from '@mailfront/proxy-core';
// Plain JS shared with scripts/fuzz/run.mjs, which runs the same properties a
// million times on the compiled dist (docs/fuzzing.md).
import { proxyCoreProperties } from '../../../scripts/fuzz/lib/proxy-core';

const properties: Record<string, fc.IPropertyWithHooks<unknown[]>> = proxyCoreProperties({ core });

describe('proxy-core fuzz (fast-check)', () => {
  for (const [name, property] of Object.entries(properties)) {
    test(name, () => {
      fc.assert(property, { numRuns: 3000 });
    });
  }
});
