// `node -r packages/testkit/bin/ts-register.cjs some.ts`: run the workspace's
// TypeScript sources in a plain node child process (a second mailfront node
// in the multi-node tests), as jest does for the test process: .ts files are
// transpiled on load and @mailfront/<pkg> resolves to packages/<pkg>/src.
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');

const root = path.resolve(__dirname, '../../..');
const ts = require(require.resolve('typescript', { paths: [root] }));

// Transpiled output is cached on disk by path, size and mtime: a second node
// started by the same test does not pay for transpiling the workspace again.
const crypto = require('node:crypto');
const os = require('node:os');
const cacheDir = path.join(os.tmpdir(), 'mailfront-ts-register');
fs.mkdirSync(cacheDir, { recursive: true });

require.extensions['.ts'] = (module, filename) => {
  const st = fs.statSync(filename);
  const key = crypto.createHash('sha1').update(`${filename}\0${st.size}\0${st.mtimeMs}\0${ts.version}`).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  let code;
  try {
    code = fs.readFileSync(cached, 'utf8');
  } catch {
    code = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    const tmp = `${cached}.${process.pid}`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, cached);
  }
  module._compile(code, filename);
};

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const m = /^@mailfront\/([a-z0-9-]+)$/.exec(request);
  if (m) return path.join(root, 'packages', m[1], 'src', 'index.ts');
  return resolve.call(this, request, parent, ...rest);
};
