// `node -r packages/testkit/bin/ts-register.cjs some.ts`: run the workspace's
// TypeScript sources in a plain node child process (a second mailfront node
// in the multi-node tests), as jest does for the test process: .ts files are
// transpiled on load and @mailfront/<pkg> resolves to packages/<pkg>/src.
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');

const root = path.resolve(__dirname, '../../..');
const ts = require(require.resolve('typescript', { paths: [root] }));

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const m = /^@mailfront\/([a-z0-9-]+)$/.exec(request);
  if (m) return path.join(root, 'packages', m[1], 'src', 'index.ts');
  return resolve.call(this, request, parent, ...rest);
};
