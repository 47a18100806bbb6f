// Compiles the verb scripts to dist/ so `make <verb>` starts in ~0.1 s instead of tsx's ~0.5 s.
// Pure-JS dependencies are bundled in (one file to read instead of hundreds to resolve halves
// the start-up); native and binary-shipping ones stay external. Shared code lands in split
// chunks and dynamic imports stay lazy, so heavy modules load only on paths that need them.
import { build } from 'esbuild';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import vm from 'node:vm';
import { brotliCompressSync, constants as zlibConstants } from 'node:zlib';

const entryPoints = readdirSync('scripts')
  .filter((f) => f.endsWith('.ts'))
  .map((f) => `scripts/${f}`);

// zod's namespace object re-exports every locale (about 40 languages), so none is tree-shaken
// away, and every verb parsed them at start-up; Switchyard's messages are English.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes("/node_modules/zod/") ? { path: args.resolveDir, namespace: 'zod-english-only' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: 'export { default as en } from "../locales/en.js";',
      resolveDir: args.path,
      loader: 'js',
    }));
  },
};

rmSync('dist', { recursive: true, force: true });
// Each build is named anew: what a build validated and kept (the inventory's check,
// scripts/lib/validation-cache.ts) is trusted by that build alone.
const buildId = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
// How this project's own code runs here: bundled ESM with shared chunks, beside node_modules.
const local = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ssh2 ships optional native add-ons; the AWS SDK is large and loaded only for s3:// stores;
  // the Batch client and Google auth are CommonJS, whose named exports a bundled import() loses.
  external: ['better-sqlite3', 'esbuild', 'ssh2', '@aws-sdk/*', '@google-cloud/batch', 'google-auth-library'],
  // Bundled CommonJS modules call require(); give ESM output one.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  define: { __SWITCHYARD_BUILD__: JSON.stringify(buildId) },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
};
// The verbs, one entry each.
await build({ ...local, entryPoints, outdir: 'dist/scripts' });
// The verbs run most again, each as one CommonJS file run from a V8 code cache
// (scripts/boot/run-cached.ts): Node 20 keeps compiled code only for a vm.Script, which runs
// scripts, not modules. About 50 ms of every launch of make train was the compiling of the same
// 1.8 MB; ~0.1 s of each of the others. A verb joins this list once it has no top-level await
// (runMain settles the process on its own).
const cachedVerbs = ['train', 'status', 'logs', 'stop', 'pull', 'verify', 'predict', 'agent-status'];
await build({
  ...local,
  splitting: false,
  format: 'cjs',
  entryPoints: cachedVerbs.map((v) => `scripts/${v}.ts`),
  // better-sqlite3's JavaScript comes into the cache too (its binding is named by path, state-db.ts):
  // required from node_modules, its dozen files were resolved and compiled on every start.
  external: local.external.filter((e) => e !== 'better-sqlite3'),
  outdir: 'dist/cached',
  outExtension: { '.js': '.cjs' },
  // A vm.Script has no loader behind import(): packages left external are required (they are all
  // CommonJS), and the one file imported at run time goes through scripts/lib/import-file.ts.
  supported: { 'dynamic-import': false },
  define: { ...local.define, 'import.meta.url': '__import_meta_url' },
  banner: { js: "const __import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
});
await build({ ...local, splitting: false, format: 'cjs', banner: {}, sourcemap: false, entryPoints: ['scripts/boot/run-cached.ts'], outfile: 'dist/cached/run.cjs' });
// A bundle of ASCII alone is read as latin1 (run-cached.ts) and becomes a one-byte string: a
// single non-ASCII character made node decode the whole 1.5 MB as UTF-8 into a two-byte string
// and V8 compile from that, ~25 ms of every start of make train. esbuild escapes such characters
// in strings, regexes and names; what it leaves is in comments it keeps (zod's em dash), where a
// \u escape means the same to a reader.
const escapeNonAscii = (text) => text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
// Each bundle is written inside the function wrapper node gives a CommonJS module: wrapping it at
// each start joined the wrapper and the 1.5 MB into a new string, which V8 then copied flat
// before compiling it: ~800 page faults a launch, ~20 ms on a machine where one costs ~25 us. The
// wrapper opens on the first line, so the source map's lines still match.
for (const v of cachedVerbs) {
  const file = `dist/cached/${v}.cjs`;
  const text = Module.wrap(escapeNonAscii(readFileSync(file, 'utf8')));
  writeFileSync(file, text);
  // esbuild can emit a script that does not parse where it rewrites an import() (one with an
  // await in its argument): refuse to finish the build rather than leave make train broken.
  new vm.Script(text, { filename: file });
}
// The dashboard's server: the same libraries, its own entry (make dashboard); its pages are
// plain files under dashboard/public, served as they are.
await build({ ...local, entryPoints: ['dashboard/server.ts'], outdir: 'dist/dashboard' });
// The worker-side runner, self-contained (every dependency inside): shipped to remote hosts,
// which have Node but not this project's node_modules.
//
// V8 compiles every function of a module's text at each start, used or not: ~0.1 s of CPU per
// runner for the S3 client's 1.4 MB, which only runs with an s3:// store. It travels inside the
// runner instead, brotli-compressed, and is unpacked and compiled the first time a store needs it
// (lazy-s3-sdk), so the runner stays one file to ship. As plain text it was still a 1.4 MB string
// literal that every start read, decoded and scanned: 1.76 MB of runner where 0.6 MB does.
const s3Sdk = await build({
  stdin: { contents: "module.exports = require('@aws-sdk/client-s3');", resolveDir: '.', loader: 'js' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  write: false,
  logLevel: 'warning',
});
// ASCII alone, so the runner can read it back as latin1: a one-byte string, undecoded. Quality 5:
// within 20% of brotli's best size, at a 60th of its time (~60 ms against ~4 s).
const s3SdkText = Buffer.from(escapeNonAscii(s3Sdk.outputFiles[0].text), 'latin1');
const s3SdkPacked = brotliCompressSync(s3SdkText, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } }).toString('base64');
const lazyS3Sdk = {
  name: 'lazy-s3-sdk',
  setup(b) {
    b.onResolve({ filter: /^@aws-sdk\/client-s3$/ }, () => ({ path: 'client-s3', namespace: 'lazy-s3-sdk' }));
    // CommonJS, which esbuild runs only when first required: the s3 store modules that import it
    // are themselves loaded only by open-store's import() of an s3:// store.
    b.onLoad({ filter: /.*/, namespace: 'lazy-s3-sdk' }, () => ({
      loader: 'js',
      contents: `const sdk = { exports: {} };
const text = require('node:zlib').brotliDecompressSync(Buffer.from(${JSON.stringify(s3SdkPacked)}, 'base64')).toString('latin1');
require('node:vm').compileFunction(text, ['module', 'exports', 'require'], { filename: 'aws-sdk-client-s3.cjs' })(sdk, sdk.exports, require);
module.exports = sdk.exports;`,
    }));
  },
};
await build({
  entryPoints: ['scripts/run-attempt.ts'],
  outfile: 'dist/runner/run-attempt.mjs',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  banner: local.banner,
  plugins: [zodEnglishOnly, lazyS3Sdk],
  logLevel: 'warning',
});
// Node's module loader decodes a file with any non-ASCII byte as UTF-8 (~25 ms of each runner's
// start when it was 2.4 MB) and V8 then compiles a two-byte string; ASCII alone skips both.
writeFileSync('dist/runner/run-attempt.mjs', escapeNonAscii(readFileSync('dist/runner/run-attempt.mjs', 'utf8')));
writeFileSync('dist/.built', new Date().toISOString() + '\n');
