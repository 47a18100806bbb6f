import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type SaveOp,
  applySaveOp,
  copyStep,
  hashFile,
  latestCheckpoint,
  parseManifest,
  planSave,
  pruneCheckpoints,
  saveCheckpoint,
  scanCheckpoints,
  serializeManifest,
  sha256Hex,
  verifyStep,
} from '../../scripts/lib/ckpt/checkpoint.js';
import { expectIntact } from '../helpers/checkpoints.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sy-ckpt-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const quiet = { report: () => {} };

/** Deterministic contents for step `step`. */
function filesFor(step: number, size = 2000): Record<string, Buffer | string> {
  const blob = Buffer.alloc(size, step % 251);
  blob.write(`step ${step}\n`);
  return { 'model.json': JSON.stringify({ step, w: [step, step * 2] }), 'opt/state.bin': blob };
}

async function steps(dir: string): Promise<number[]> {
  return (await scanCheckpoints(dir)).committed.map((c) => c.step);
}


describe('save and load', () => {
  it('round-trips a step: blobs, sorted manifest, latest', async () => {
    const dir = await saveCheckpoint(root, 5, filesFor(5), { run_id: 'r-1', attempt: 2 });
    expect(dir).toBe(join(root, '5'));
    const found = await latestCheckpoint(root, quiet);
    expect(found?.step).toBe(5);
    expect(found?.manifest).toMatchObject({ format: 'switchyard-ckpt/1', step: 5, run_id: 'r-1', attempt: 2 });
    expect(found!.manifest.files.map((f) => f.path)).toEqual(['model.json', 'opt/state.bin']);
    await expectIntact(found!, filesFor);
    const text = await readFile(join(dir, 'manifest.json'), 'utf8');
    expect(serializeManifest(parseManifest(text, 'm'))).toBe(text);
    expect(await readdir(dir)).not.toContain('manifest.json.tmp');
  });

  it('replaces an existing step wholesale', async () => {
    await saveCheckpoint(root, 1, { 'a.txt': 'old', 'gone.txt': 'x' });
    await saveCheckpoint(root, 1, { 'a.txt': 'new' });
    expect((await readdir(join(root, '1'))).sort()).toEqual(['a.txt', 'manifest.json']);
    expect(await readFile(join(root, '1', 'a.txt'), 'utf8')).toBe('new');
  });

  it('rejects bad steps and paths before writing anything', async () => {
    await expect(saveCheckpoint(root, -1, {})).rejects.toThrow(/step/);
    for (const bad of ['../x', '/abs', 'a//b', 'manifest.json', 'a\\b', './a']) {
      await expect(saveCheckpoint(root, 1, { [bad]: 'x' })).rejects.toThrow(/invalid file path/);
    }
    expect(await readdir(root)).toEqual([]);
  });

  it('parseManifest names where and the field', () => {
    expect(() => parseManifest('{', 'ckpt/3/manifest.json')).toThrow(/^ckpt\/3\/manifest.json: not valid JSON/);
    const m = JSON.parse(serializeManifest({ format: 'switchyard-ckpt/1', step: 1, run_id: '', attempt: 0, created_at: 'now', files: [] }));
    expect(() => parseManifest(JSON.stringify({ ...m, step: -1 }), 'W')).toThrow(/^W: step:/);
    expect(() => parseManifest(JSON.stringify({ ...m, format: 'x' }), 'W')).toThrow(/^W: format:/);
    const file = { path: 'a', size: 1, sha256: 'A'.repeat(64) };
    expect(() => parseManifest(JSON.stringify({ ...m, files: [file] }), 'W')).toThrow(/^W: files.0.sha256:/);
    expect(() => parseManifest(JSON.stringify({ ...m, files: [{ ...file, sha256: 'a'.repeat(64), path: '../a' }] }), 'W')).toThrow(/files.0.path/);
  });

  it('hashFile streams size and sha256', async () => {
    const data = Buffer.alloc(3 << 20, 7);
    await writeFile(join(root, 'f'), data);
    expect(await hashFile(join(root, 'f'))).toEqual({ size: data.length, sha256: sha256Hex(data) });
  });
});

describe('corrupt steps are skipped, reported, and latest falls back', () => {
  const cases: [string, (stepDir: string) => Promise<void>, RegExp][] = [
    ['no manifest', (d) => unlink(join(d, 'manifest.json')), /^no manifest\.json/],
    ['only manifest.json.tmp', (d) => rename(join(d, 'manifest.json'), join(d, 'manifest.json.tmp')), /manifest\.json\.tmp present/],
    ['manifest unparsable', (d) => writeFile(join(d, 'manifest.json'), '{"format": "switchyard-ckpt/1", "st'), /^manifest\.json unparsable: not valid JSON/],
    ['manifest invalid', (d) => editManifest(d, (m) => ({ ...m, files: 'nope' })), /^manifest\.json unparsable: files:/],
    ['blob missing', (d) => unlink(join(d, 'opt/state.bin')), /^opt\/state\.bin: missing$/],
    ['size mismatch', (d) => writeFile(join(d, 'model.json'), '{}'), /^model\.json: size mismatch \(manifest \d+ bytes, file 2 bytes\)/],
    ['sha256 mismatch', (d) => flipByte(join(d, 'opt/state.bin'), 1000), /^opt\/state\.bin: sha256 mismatch/],
    ['step mismatch', (d) => editManifest(d, (m) => ({ ...m, step: 1 })), /^step mismatch: directory 2 holds a manifest for step 1/],
  ];
  for (const [name, corrupt, reason] of cases) {
    it(name, async () => {
      await saveCheckpoint(root, 1, filesFor(1));
      await saveCheckpoint(root, 2, filesFor(2));
      await corrupt(join(root, '2'));
      const lines: string[] = [];
      const found = await latestCheckpoint(root, { report: (l) => lines.push(l) });
      expect(found?.step).toBe(1);
      await expectIntact(found!, filesFor);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^skipping step 2: /);
      expect(lines[0]!.slice('skipping step 2: '.length)).toMatch(reason);
      const scan = await scanCheckpoints(root);
      expect(scan.committed.map((c) => c.step)).toEqual([1]);
      expect(scan.skipped).toEqual([{ step: 2, dir: join(root, '2'), reason: expect.stringMatching(reason) }]);
    });
  }

  it('ignores names that are not step numbers, and returns null when nothing verifies', async () => {
    await saveCheckpoint(root, 3, filesFor(3));
    await cp(join(root, '3'), join(root, '007'), { recursive: true });
    await mkdir(join(root, 'tmp'));
    await writeFile(join(root, '9'), 'a file, not a step');
    expect((await latestCheckpoint(root, quiet))?.step).toBe(3);
    expect(await scanCheckpoints(root)).toMatchObject({ committed: [{ step: 3 }], skipped: [] });
    await unlink(join(root, '3', 'model.json'));
    const lines: string[] = [];
    expect(await latestCheckpoint(root, { report: (l) => lines.push(l) })).toBeNull();
    expect(lines).toEqual(['skipping step 3: model.json: missing']);
    expect(await latestCheckpoint(join(root, 'absent'), quiet)).toBeNull();
  });
});

describe('retention', () => {
  it('keeps the newest 3 by default, SWITCHYARD_CKPT_KEEP or meta.keep otherwise', async () => {
    for (let s = 1; s <= 6; s++) await saveCheckpoint(root, s, filesFor(s));
    expect(await steps(root)).toEqual([4, 5, 6]);
    process.env.SWITCHYARD_CKPT_KEEP = '2';
    try {
      await saveCheckpoint(root, 7, filesFor(7));
      expect(await steps(root)).toEqual([6, 7]);
      process.env.SWITCHYARD_CKPT_KEEP = 'lots';
      await expect(saveCheckpoint(root, 8, filesFor(8))).rejects.toThrow(/SWITCHYARD_CKPT_KEEP/);
    } finally {
      delete process.env.SWITCHYARD_CKPT_KEEP;
    }
    await saveCheckpoint(root, 8, filesFor(8), { keep: 1 });
    expect(await readdir(root)).toEqual(['8']);
    await expect(pruneCheckpoints(root, 0)).rejects.toThrow(/positive integer/);
  });

  it('prunes only committed steps, leaving partial and corrupt ones to be reported', async () => {
    await mkdir(join(root, '0'));
    await writeFile(join(root, '0', 'model.json'), 'partial');
    await saveCheckpoint(root, 1, filesFor(1));
    await flipByte(join(root, '1', 'opt/state.bin'), 10);
    for (let s = 2; s <= 5; s++) await saveCheckpoint(root, s, filesFor(s), { keep: 2 });
    const scan = await scanCheckpoints(root);
    expect(scan.committed.map((c) => c.step)).toEqual([4, 5]);
    expect(scan.skipped.map((s) => s.step)).toEqual([0, 1]);
    expect(await pruneCheckpoints(root, 1)).toEqual([4]);
    expect((await readdir(root)).sort()).toEqual(['0', '1', '5']);
  });
});

describe('copyStep', () => {
  it('copies a step blobs-first and verified, replacing what was there', async () => {
    const src = await saveCheckpoint(join(root, 'local'), 4, filesFor(4, 3 << 20));
    const { manifest } = (await latestCheckpoint(join(root, 'local'), quiet))!;
    const dest = join(root, 'store', 'runs', 'r', 'ckpt', '4');
    await saveCheckpoint(join(root, 'store', 'runs', 'r', 'ckpt'), 4, { 'stale.bin': 'old' });
    const res = await copyStep(src, dest, manifest);
    expect(res.manifestPath).toBe(join(dest, 'manifest.json'));
    expect(res.manifestSha256).toBe(sha256Hex(await readFile(res.manifestPath)));
    const v = await verifyStep(dest);
    expect(v.ok && v.manifest).toEqual(manifest);
    expect((await readdir(dest)).sort()).toEqual(['manifest.json', 'model.json', 'opt']);
  });

  it('throws naming the file when a source blob does not match, leaving dest uncommitted', async () => {
    const src = await saveCheckpoint(join(root, 'local'), 4, filesFor(4));
    const { manifest } = (await latestCheckpoint(join(root, 'local'), quiet))!;
    await flipByte(join(src, 'opt/state.bin'), 5);
    const dest = join(root, 'store', '4');
    await expect(copyStep(src, dest, manifest)).rejects.toThrow(/^copyStep: opt\/state\.bin: sha256 mismatch/);
    expect((await verifyStep(dest)).ok).toBe(false);
    await unlink(join(src, 'model.json'));
    await expect(copyStep(src, dest, manifest)).rejects.toThrow(/^copyStep: model\.json: missing/);
  });
});

describe('fault: a crash anywhere in a save leaves a complete step', () => {
  it('every prefix of the write sequence of step N+1 over committed N', async () => {
    const N = 3;
    const files = (step: number) => ({ ...filesFor(step, 100_000), 'z.bin': Buffer.alloc(50_000 + step, 1) });
    const oldFiles = (step: number) => (step === N + 1 ? { 'old.bin': 'an older save of N+1' } : files(step));
    const bases: Record<string, string> = {};
    // 1: steps 1..N committed. 2: plus an older committed N+1 being re-saved. 3: plus a partial N+1.
    for (const base of ['clean', 'stale', 'partial']) {
      bases[base] = join(root, `base-${base}`);
      for (let s = 1; s <= N; s++) await saveCheckpoint(bases[base], s, files(s), { keep: 3 });
    }
    await saveCheckpoint(bases.stale!, N + 1, oldFiles(N + 1), { keep: 10 });
    await mkdir(join(bases.partial!, String(N + 1)));
    await writeFile(join(bases.partial!, String(N + 1), 'model.json'), 'half a bl');
    await writeFile(join(bases.partial!, String(N + 1), 'manifest.json.tmp'), '{"format"');

    const work = join(root, 'work');
    const { ops } = planSave(work, N + 1, files(N + 1), { run_id: 'r', attempt: 1 });
    const kinds = ops.map((o) => (o.kind === 'write' ? (o.path.endsWith('.tmp') ? 'manifest' : 'blob') : o.kind));
    expect(kinds.lastIndexOf('blob')).toBeLessThan(kinds.indexOf('manifest'));
    expect(kinds.slice(-2)).toEqual(['manifest', 'rename']);
    expect(kinds.slice(0, 2)).toEqual(['uncommit', 'rmrf']);

    let states = 0;
    const seen = new Set<number>();
    for (const [name, base] of Object.entries(bases)) {
      const expected = name === 'stale' ? (s: number) => (s === N + 1 ? oldFiles(s) : files(s)) : files;
      for (let i = 0; i <= ops.length; i++) {
        for (const partial of partialsOf(ops[i])) {
          await rm(work, { recursive: true, force: true });
          await cp(base, work, { recursive: true });
          for (const op of ops.slice(0, i)) await applySaveOp(op);
          await partial();
          const found = await latestCheckpoint(work, quiet);
          expect(found, `${name} state ${i}`).not.toBeNull();
          expect([N, N + 1]).toContain(found!.step);
          const committedNew = i > ops.length - 1;
          await expectIntact(found!, committedNew ? files : expected);
          if (committedNew) expect(found!.step).toBe(N + 1);
          seen.add(found!.step);
          states++;
        }
      }
    }
    expect(seen).toEqual(new Set([N, N + 1]));
    expect(states).toBeGreaterThan(3 * ops.length);
  });
});

/** The state just before op (nothing), plus, for writes, the file cut off at several offsets. */
function partialsOf(op: SaveOp | undefined): (() => Promise<void>)[] {
  const none = async () => {};
  if (op?.kind === 'write') {
    const len = op.data.length;
    const offsets = [...new Set([0, 1, Math.floor(len / 2), len - 1])].filter((o) => o < len);
    return [none, ...offsets.map((o) => () => writeFile(op.path, op.data.subarray(0, o)))];
  }
  if (op?.kind === 'rmrf') return [none, () => rm(join(op.path, 'model.json'), { force: true })];
  return [none];
}

async function flipByte(path: string, at: number) {
  const data = await readFile(path);
  data[at] = data[at]! ^ 0xff;
  await writeFile(path, data);
}

async function editManifest(dir: string, edit: (m: Record<string, unknown>) => unknown) {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(edit(m)));
}
