import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
  });
});
