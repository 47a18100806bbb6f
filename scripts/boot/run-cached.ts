// node dist/cached/run.cjs <verb> [name=value ...]: runs a verb bundled as one CommonJS file
// (dist/cached/<verb>.cjs) from a V8 code cache beside it, so that the ~1.8 MB of make train is
// not parsed and compiled again on every start (about 50 ms of its launch). Node 20 offers a
// code cache only to vm.Script, which runs scripts, not ES modules: hence the CommonJS bundle.
// The cache is made from the first run after a build (at its exit, so the functions that run
// compiled too) and replaced whenever it does not match the bundle, node, or its own checksum.
import { fstatSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { bundleIdentity, openCache, sealCache } from './code-cache.js';
import { IMPORT_HOOK } from '../lib/import-file.js';

// make starts a cached verb with NODE_EXTRA_CA_CERTS narrowed to what it adds to node's roots (the
// Makefile, scripts/lib/extra-ca.ts), read by node at its start; what this verb starts gets the user's own.
const extraCa = process.env.SWITCHYARD_NODE_EXTRA_CA_CERTS;
if (extraCa !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = extraCa;
  delete process.env.SWITCHYARD_NODE_EXTRA_CA_CERTS;
}

const verb = process.argv[2] ?? '';
const bundle = path.join(__dirname, `${path.basename(verb)}.cjs`);
const cacheFile = `${bundle}.cache`;

const fd = openSync(bundle, 'r');
const identity = bundleIdentity(fstatSync(fd));
const source = readFileSync(fd, 'latin1'); // the build leaves only ASCII in it: a one-byte string, undecoded
let cached: Buffer | null = null;
try {
  cached = openCache(identity, readFileSync(cacheFile));
} catch {
  // no cache yet: this run makes it
}
// The build wrote the bundle inside node's CommonJS function wrapper (build.mjs): compiled as it is.
const script = new vm.Script(source, { filename: bundle, cachedData: cached ?? undefined });
if (!cached || script.cachedDataRejected) {
  process.once('exit', () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, sealCache(identity, script.createCachedData()));
      renameSync(tmp, cacheFile); // whole or not at all, when two verbs start at once
    } catch {
      // a read-only dist/: the verb runs all the same, compiled afresh each time
    }
  });
}

// A vm.Script has no module loader behind its import(): the bundle's one dynamic import of a file
// outside it (the compiled config, scripts/lib/import-file.ts) comes here instead.
(globalThis as { [IMPORT_HOOK]?: (url: string) => Promise<unknown> })[IMPORT_HOOK] = (url) => import(url);
process.argv.splice(1, 2, bundle); // the verb sees argv as if node had started it directly
const module = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void).call(module.exports, module.exports, createRequire(bundle), module, bundle, path.dirname(bundle));
