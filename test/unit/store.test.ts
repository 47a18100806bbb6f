import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../scripts/lib/ckpt/checkpoint.js';
import { restoreLatest, storedSteps, uploadStep, pruneStoredSteps } from '../../scripts/lib/runner/store-checkpoints.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { sha256Hex } from '../../scripts/lib/pins/canonical-json.js';

let tmp: string;
let store: FileStore;
const RUN = 'toy-default-20260101T0000-00000000';

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'store-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

async function commitLocal(step: number, content: string) {
  const dir = await saveCheckpoint(path.join(tmp, 'local'), step, { 'model.bin': content, 'opt/state.json': `{"step":${step}}` }, { keep: 10 });
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  return uploadStep(store, RUN, dir, manifest);
}

describe('file store', () => {
  it('puts, gets, lists, stats and deletes objects with verified hashes', async () => {
    const src = path.join(tmp, 'a.txt');
    writeFileSync(src, 'hello');
    expect(await store.put('runs/x/a.txt', src)).toEqual({ size: 5, sha256: sha256Hex('hello') });
    expect(await store.putBytes('runs/x/b/c.txt', 'world')).toEqual({ size: 5, sha256: sha256Hex('world') });
    expect(await store.list('runs/x/')).toEqual(['runs/x/a.txt', 'runs/x/b/c.txt']);
    expect((await store.getBytes('runs/x/b/c.txt'))!.toString()).toBe('world');
    expect(await store.get('runs/x/a.txt', path.join(tmp, 'back.txt'))).toEqual({ size: 5, sha256: sha256Hex('hello') });
    expect(await store.getBytes('runs/x/missing')).toBeNull();
    expect(await store.stat('runs/x/missing')).toBeNull();
    await store.delete('runs/x/a.txt');
    expect(await store.list('runs/x/')).toEqual(['runs/x/b/c.txt']);
    expect(readdirSync(path.join(tmp, 'store/runs/x')).some((f) => f.includes('.tmp-'))).toBe(false);
  });

  it('deletes the folders an object leaves empty, up to the store root', async () => {
    await store.putBytes('runs/x/ckpt/1/sub/a.bin', 'a');
    await store.putBytes('runs/x/run.json', '{}');
    await store.delete('runs/x/ckpt/1/sub/a.bin');
    expect(readdirSync(path.join(tmp, 'store/runs/x'))).toEqual(['run.json']);
    await store.delete('runs/x/run.json');
    expect(readdirSync(path.join(tmp, 'store'))).toEqual([]);
  });

  it('sweeps temp files their writers left behind, and never one a writer is still filling', async () => {
    const dir = path.join(tmp, 'store/runs/x/attempts/1');
    mkdirSync(dir, { recursive: true });
    const crashed = path.join(dir, 'stderr.log.tmp-0123abcd');
    const live = path.join(dir, 'stdout.log.tmp-89abcdef');
    writeFileSync(crashed, 'half a log');
    writeFileSync(live, 'being written');
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(crashed, hourAgo, hourAgo);
    expect(await store.list('runs/x/')).toEqual([]);
    expect(readdirSync(dir)).toEqual(['stdout.log.tmp-89abcdef']);

    writeFileSync(crashed, 'half a log');
    utimesSync(crashed, hourAgo, hourAgo);
    await store.putBytes('runs/x/attempts/1/status.json', '{}');
    expect(readdirSync(dir).sort()).toEqual(['status.json', 'stdout.log.tmp-89abcdef']);
  });

  it('refuses keys that escape the store', async () => {
    await expect(store.putBytes('../outside', 'x')).rejects.toThrow(/invalid store key/);
    await expect(store.putBytes('/abs', 'x')).rejects.toThrow(/invalid store key/);
  });
});

describe('checkpoints in the store', () => {
  it('restores the newest committed step and reuses an identical local copy', async () => {
    await commitLocal(1, 'one');
    await commitLocal(2, 'two');
    const dest = path.join(tmp, 'restore');
    const lines: string[] = [];
    expect(await restoreLatest(store, RUN, dest, (l) => lines.push(l))).toBe(2);
    expect(readFileSync(path.join(dest, '2/model.bin'), 'utf8')).toBe('two');
    expect(readdirSync(dest)).toEqual(['2']);
    expect(await restoreLatest(store, RUN, dest, (l) => lines.push(l))).toBe(2);
    expect(lines).toEqual([]);
  });

  it('skips a partial upload (blobs without a manifest) and says so', async () => {
    await commitLocal(1, 'one');
    await store.putBytes(`runs/${RUN}/ckpt/5/model.bin`, 'half');
    const lines: string[] = [];
    expect(await restoreLatest(store, RUN, path.join(tmp, 'r'), (l) => lines.push(l))).toBe(1);
    expect(lines).toEqual(['skipping stored step 5: no manifest (partial upload)']);
  });

  it('falls back past a corrupt blob and names the corrupt file', async () => {
    await commitLocal(1, 'one');
    await commitLocal(2, 'two');
    writeFileSync(store.pathOf(`runs/${RUN}/ckpt/2/opt/state.json`), '{"step":666}');
    const lines: string[] = [];
    const dest = path.join(tmp, 'r');
    expect(await restoreLatest(store, RUN, dest, (l) => lines.push(l))).toBe(1);
    expect(lines).toEqual([`skipping stored step 2: runs/${RUN}/ckpt/2/opt/state.json is corrupt (sha256 does not match its manifest)`]);
    expect(readdirSync(dest)).toEqual(['1']);
  });

  it('prunes the oldest committed steps, manifest first', async () => {
    for (const step of [1, 2, 3, 4]) await commitLocal(step, `s${step}`);
    expect(await pruneStoredSteps(store, RUN, 2)).toEqual([1, 2]);
    expect((await storedSteps(store, RUN)).map((s) => s.step)).toEqual([3, 4]);
    expect(readdirSync(store.pathOf(`runs/${RUN}/ckpt`)).sort()).toEqual(['3', '4']);
  });

  it('records each pruned step before deleting it, and a failed record keeps the step', async () => {
    for (const step of [1, 2, 3]) await commitLocal(step, `s${step}`);
    const recorded: number[] = [];
    await expect(
      pruneStoredSteps(store, RUN, 1, (step) => {
        if (step === 2) throw new Error('events.jsonl: no space left on device');
        recorded.push(step);
      }),
    ).rejects.toThrow(/no space left/);
    expect(recorded).toEqual([1]);
    expect((await storedSteps(store, RUN)).map((s) => s.step)).toEqual([2, 3]);
  });
});

/** Why a small tmpfs cannot be mounted here, or null when it can. */
function mountProblem(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs';
  const probe = mkdtempSync(path.join(os.tmpdir(), 'sy-tmpfs-probe-'));
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', probe]);
    if (r.status !== 0) return `mount -t tmpfs failed: ${r.stderr.toString().trim()}`;
    execFileSync('umount', [probe]);
    return null;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const noMount = mountProblem();
if (noMount) console.warn(`full-disk store tests skipped: ${noMount}`);

describe.skipIf(noMount !== null)('a file store on a full or read-only disk', () => {
  let disk: string;
  const mount = (opts: string) => execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', disk]);
  beforeEach(() => {
    disk = path.join(tmp, 'disk');
    mkdirSync(disk);
  });
  afterEach(() => {
    spawnSync('umount', ['-l', disk]); // lazily: a file the failed write left open must not keep the folder busy
  });

  const oneLine = /^store \S+: no space left on device \(\d+(\.\d)? [KM]?B free\); free space, then run the same command again \(a run resumes from its last committed checkpoint\)$/;

  it('a write that does not fit fails with one line and leaves no object, old or new, half written', async () => {
    mount('size=16k');
    const full = new FileStore('file://disk', disk);
    await full.putBytes('runs/r/run.json', '{"v":1}\n');
    const big = Buffer.alloc(64 * 1024, 'x');
    await expect(full.putBytes('runs/r/run.json', big)).rejects.toThrow(oneLine);
    expect((await full.getBytes('runs/r/run.json'))!.toString()).toBe('{"v":1}\n');
    await expect(full.putBytes('runs/r/new.json', big)).rejects.toThrow(oneLine);
    expect(await full.getBytes('runs/r/new.json')).toBeNull();
    const src = path.join(tmp, 'big.bin');
    writeFileSync(src, big);
    await expect(full.put('runs/r/ckpt/1/big.bin', src)).rejects.toThrow(oneLine);
    expect(await full.stat('runs/r/ckpt/1/big.bin')).toBeNull();
    expect(readdirSync(path.join(disk, 'runs/r'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)).toEqual(['run.json']);
  });

  it('a checkpoint that does not fit where it is restored fails the restore; it is not skipped as corrupt', async () => {
    mount('size=16k');
    await commitLocal(1, 'x'.repeat(64 * 1024));
    const lines: string[] = [];
    await expect(restoreLatest(store, RUN, path.join(disk, 'ckpt'), (l) => lines.push(l))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(lines).toEqual([]);
  });

  it('a read-only store is one line naming it (not ENOENT)', async () => {
    mount('size=16k,ro');
    const ro = new FileStore('file://disk', disk);
    const err = await ro.putBytes('runs/r/run.json', '{}').catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^store \S+: read-only file system \(\d+(\.\d)? [KM]?B free\); make it writable, then run the same command again/);
    expect((err as Error).message).not.toContain('\n');
  });
});
