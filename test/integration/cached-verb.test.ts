// The runner of cached verbs (scripts/boot/run-cached.ts) with a small verb of its own: the verb
// runs the same with its code cache missing, valid, damaged, or left from another build, and a
// cache that does not fit is written anew.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import Module from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/sandbox.js';

let dir: string;
let bundle: string;
let cache: string;

// Reads a file through the import() the runner lends (as loadConfig reads the compiled config), then
// prints what it was given.
const VERB = `
const seen = JSON.stringify({ argv: process.argv.slice(1), file: __filename });
globalThis[Symbol.for('switchyard.import-file')](require('node:url').pathToFileURL(__dirname + '/answer.mjs').href)
  .then((m) => console.log(seen, m.default));
`;

function runVerb() {
  const r = spawnSync(process.execPath, [path.join(dir, 'run.cjs'), 'hello', 'experiment=x'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const [json, answer] = r.stdout.trim().split(' ');
  expect(JSON.parse(json!)).toEqual({ argv: [bundle, 'experiment=x'], file: bundle });
  expect(answer).toBe('42');
}

/** Runs the verb and says whether it left the cache file untouched (it fit). */
function keptCache(): boolean {
  const { ino, mtimeMs } = statSync(cache);
  runVerb();
  const after = statSync(cache);
  return after.ino === ino && after.mtimeMs === mtimeMs;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-cached-verb-'));
  await build({ entryPoints: [path.join(REPO, 'scripts/boot/run-cached.ts')], bundle: true, format: 'cjs', platform: 'node', target: 'node20', outfile: path.join(dir, 'run.cjs'), logLevel: 'warning' });
  bundle = path.join(dir, 'hello.cjs');
  cache = `${bundle}.cache`;
  writeFileSync(bundle, Module.wrap(VERB)); // inside node's CommonJS wrapper, as build.mjs writes a verb
  writeFileSync(path.join(dir, 'answer.mjs'), 'export default 42;\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a verb run from its code cache', () => {
  it('runs without a cache and leaves one', () => {
    rmSync(cache, { force: true });
    runVerb();
    expect(statSync(cache).size).toBeGreaterThan(32);
  });

  it('runs from a cache that fits, leaving it as it was', () => {
    const before = readFileSync(cache);
    expect(keptCache()).toBe(true);
    expect(readFileSync(cache).equals(before)).toBe(true);
  });

  it('runs past a damaged cache and writes a good one', () => {
    const damaged = readFileSync(cache);
    for (let i = 40; i < damaged.length; i += 7) damaged[i] = damaged[i]! ^ 0xff;
    writeFileSync(cache, damaged);
    expect(keptCache()).toBe(false);
    expect(keptCache()).toBe(true);
  });

  it('runs past a truncated or empty cache', () => {
    writeFileSync(cache, readFileSync(cache).subarray(0, 100));
    expect(keptCache()).toBe(false);
    writeFileSync(cache, '');
    expect(keptCache()).toBe(false);
    expect(keptCache()).toBe(true);
  });

  it('replaces the cache of an earlier build of the verb', () => {
    const later = new Date(Date.now() + 5_000);
    utimesSync(bundle, later, later); // a rebuild: the same bytes, a new bundle
    expect(keptCache()).toBe(false);
    expect(keptCache()).toBe(true);
  });
});

describe("the cached verbs make's build leaves", () => {
  // run-cached.ts reads a bundle as latin1, which is only the same text for ASCII alone.
  it('hold ASCII alone (what esbuild keeps of other characters, in comments, is written as \\u escapes)', () => {
    const dist = path.join(REPO, 'dist/cached');
    const verbs = readdirSync(dist).filter((f) => f.endsWith('.cjs') && f !== 'run.cjs');
    expect(verbs).toContain('train.cjs');
    for (const verb of verbs) {
      const bytes = readFileSync(path.join(dist, verb));
      expect(bytes.findIndex((b) => b > 0x7f), verb).toBe(-1);
    }
  });
});
