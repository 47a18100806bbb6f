// A full disk at every stage of a run: the sandbox's .switchyard (state db, caches, ledger,
// work folder and the file store) lives on a small tmpfs. `make train` stops with one line,
// leaves no empty or half-written object behind, and once space is freed resumes the same run
// to the same outputs as an uninterrupted one. Needs root (mount); skipped with a reason without.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { mountTmpfs, tmpfsProblem, unmountTmpfs } from '../helpers/tmpfs.js';

const FAST = 'experiment=penguins/fast';

const skipReason = tmpfsProblem();
if (skipReason) console.warn(`full-disk tests skipped: ${skipReason}`);

const mount = (dir: string, kib: number) => mountTmpfs(dir, `size=${kib}k`);
const mounted = (dir: string) => readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);

/** Every file below `dir`, relative to it. */
function filesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** The run's outputs in the store (the outputs folder and its manifest), by relative path. */
function outputsOf(sb: Sandbox): Record<string, string> {
  const runs = path.join(sb.dir, '.switchyard/store/runs');
  const [id, ...more] = readdirSync(runs);
  expect(more).toEqual([]);
  const dir = path.join(runs, id!, 'outputs');
  return Object.fromEntries([...filesIn(dir).map((f) => [`outputs/${f}`, readFileSync(path.join(dir, f), 'utf8')]), ['outputs.manifest.json', readFileSync(path.join(runs, id!, 'outputs.manifest.json'), 'utf8')]]);
}

describe.skipIf(skipReason !== null)('a full disk under .switchyard', () => {
  let reference: Record<string, string>;
  let sb: Sandbox | null = null;
  let state: string;

  beforeAll(() => {
    const ref = createSandbox();
    try {
      const r = ref.make(['train', FAST]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      reference = outputsOf(ref);
    } finally {
      ref.cleanup();
    }
  });
  afterEach(() => {
    if (sb && mounted(path.join(sb.dir, '.switchyard'))) unmountTmpfs(path.join(sb.dir, '.switchyard'));
    sb?.cleanup();
    sb = null;
  });
  afterAll(() => {
    if (state) rmSync(state, { recursive: true, force: true });
  });

  // A penguins/fast run needs over 320 KiB of tmpfs (a page per small file, the state db's
  // write-ahead log). Here the disk fills as the state db is created (8), while the caches are
  // written (96), at the run's first ledger entry (128), as the run's record is saved (160), and
  // while it trains (256).
  it.each([8, 96, 128, 160, 256])('%i KiB: make train stops with one line, then resumes to the same outputs', (kib) => {
    sb = createSandbox();
    const dot = path.join(sb.dir, '.switchyard');
    mkdirSync(dot);
    mount(dot, kib);

    const full = sb.make(['train', FAST]);
    const out = full.stdout + full.stderr;
    expect(full.code, out).not.toBe(0);
    expect(out).not.toMatch(/^\s+at /m); // no stack
    expect(out).not.toContain('internal error');
    const problems = out.split('\n').filter((l) => /no space left on device/.test(l));
    expect(problems, out).toHaveLength(1);
    expect(problems[0]).toMatch(/\.switchyard\S*: no space left on device \(\d+(\.\d)? [KM]?B free\); free space, then run the same command again/);

    // Free space: the same contents on a bigger tmpfs at the same path.
    state = mkdtempSync(path.join(os.tmpdir(), 'sy-full-disk-'));
    cpSync(dot, state, { recursive: true });
    unmountTmpfs(dot);
    mount(dot, 64 * 1024);
    cpSync(state, dot, { recursive: true });
    rmSync(state, { recursive: true, force: true });

    const resumed = sb.make(['train', FAST]);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(outputsOf(sb)).toEqual(reference);
    const store = path.join(dot, 'store');
    for (const f of filesIn(store).filter((f) => f.endsWith('.json'))) {
      expect(() => JSON.parse(readFileSync(path.join(store, f), 'utf8')), f).not.toThrow();
    }
    expect(filesIn(store).filter((f) => /\.tmp-/.test(f))).toEqual([]);
    const verify = sb.make(['verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
