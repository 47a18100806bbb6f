import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { restoreLatest, StoreReadError, storedSteps, pruneStoredSteps } from '../../scripts/lib/runner/store-checkpoints.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { CorruptObject } from '../../scripts/lib/store/store.js';
import { sha256Hex } from '../../scripts/lib/pins/canonical-json.js';
import { commitToStore } from '../helpers/checkpoints.js';
import { readAll } from '../helpers/read-all.js';

let tmp: string;
let store: FileStore;
const RUN = 'toy-default-20260101T0000-00000000';

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'store-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const commitLocal = (step: number, content: string) => commitToStore(store, RUN, path.join(tmp, 'local'), step, content);

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

  it('reads an object from a byte on, streamed; a missing one is null', async () => {
    const bytes = randomBytes(200_000); // several stream chunks
    await store.putBytes('runs/x/stdout.log', bytes);
    expect(await readAll(store.read('runs/x/stdout.log', { start: 70_001 }))).toEqual(bytes.subarray(70_001));
    expect(await readAll(store.read('runs/x/stdout.log'))).toEqual(bytes);
    expect(await readAll(store.read('runs/x/stdout.log', { start: bytes.length + 1 }))).toEqual(Buffer.alloc(0));
    expect(await store.read('runs/x/missing.log')).toBeNull();
  });

  it('a folder that cannot be read is an error, not an empty listing or a missing object', async () => {
    await commitLocal(1, 'one');
    await store.putBytes(`runs/${RUN}/run.json`, '{}');
    expect(await store.list(`runs/${RUN}/ckpt/`)).toContain(`runs/${RUN}/ckpt/1/manifest.json`);
    // As root no folder is unreadable by its mode (EACCES); a symlink loop cannot be read either (ELOOP).
    const ckpt = path.join(tmp, `store/runs/${RUN}/ckpt`);
    renameSync(ckpt, `${ckpt}.away`);
    symlinkSync(ckpt, ckpt);
    await expect(store.list(`runs/${RUN}/ckpt/`)).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(store.stat(`runs/${RUN}/ckpt/1/model.bin`)).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(store.getBytes(`runs/${RUN}/ckpt/1/manifest.json`)).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(restoreLatest(store, RUN, path.join(tmp, 'r'), () => {}, { tries: 1, delayMs: 0 })).rejects.toThrow(StoreReadError);
    // Absent is still absent: a missing folder, or a path through a file.
    expect(await store.list('runs/nothing/')).toEqual([]);
    expect(await store.list(`runs/${RUN}/run.json/`)).toEqual([]);
    expect(await store.stat(`runs/${RUN}/run.json/x`)).toBeNull();
    expect(await store.getBytes(`runs/${RUN}/run.json/x`)).toBeNull();
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

  it('skips a step whose manifest does not parse, naming why', async () => {
    await commitLocal(1, 'one');
    await commitLocal(2, 'two');
    writeFileSync(store.pathOf(`runs/${RUN}/ckpt/2/manifest.json`), '{"format":');
    const lines: string[] = [];
    expect(await restoreLatest(store, RUN, path.join(tmp, 'r'), (l) => lines.push(l))).toBe(1);
    expect(lines).toEqual([expect.stringMatching(/^skipping stored step 2: .*manifest\.json: not valid JSON/)]);
  });

  it('a read that fails on the way is tried again, not taken for a corrupt step', async () => {
    await commitLocal(1, 'one');
    await commitLocal(2, 'two');
    let resets = 1;
    const flaky = Object.create(store) as FileStore;
    flaky.get = async (...args) => {
      if (resets-- > 0) throw new Error('read ECONNRESET');
      return store.get(...args);
    };
    const lines: string[] = [];
    expect(await restoreLatest(flaky, RUN, path.join(tmp, 'r'), (l) => lines.push(l), { tries: 3, delayMs: 0 })).toBe(2);
    expect(lines).toEqual(['reading checkpoint step 2 from the store failed (read ECONNRESET); trying again']);
  });

  it('a blob the store itself finds damaged (CorruptObject) is evidence: the step is skipped at once', async () => {
    await commitLocal(1, 'one');
    await commitLocal(2, 'two');
    const damaged = Object.create(store) as FileStore;
    damaged.get = async (key, dest) => {
      if (key.includes('/ckpt/2/')) throw new CorruptObject(`${key}: corrupt: received bytes unlike the object's metadata`);
      return store.get(key, dest);
    };
    const lines: string[] = [];
    expect(await restoreLatest(damaged, RUN, path.join(tmp, 'r'), (l) => lines.push(l), { tries: 3, delayMs: 0 })).toBe(1);
    expect(lines).toEqual([expect.stringMatching(/^skipping stored step 2: runs\/.*\/ckpt\/2\/model\.bin is corrupt \(.*: corrupt: received bytes/)]);
  });

  it('a store that cannot be read fails the restore, skipping nothing and leaving the local copy alone', async () => {
    await commitLocal(1, 'one');
    await commitLocal(2, 'two');
    const dest = path.join(tmp, 'restore');
    expect(await restoreLatest(store, RUN, dest, () => {})).toBe(2);
    const down = Object.create(store) as FileStore;
    down.getBytes = down.get = down.stat = async () => {
      throw new Error('read ECONNRESET');
    };
    const lines: string[] = [];
    await expect(restoreLatest(down, RUN, dest, (l) => lines.push(l), { tries: 2, delayMs: 0 })).rejects.toThrow(
      new StoreReadError('cannot read checkpoint step 2 from the store: read ECONNRESET (tried 2 times)'),
    );
    expect(lines.filter((l) => l.startsWith('skipping'))).toEqual([]);
    expect(readdirSync(dest)).toEqual(['2']);
    expect(readFileSync(path.join(dest, '2/model.bin'), 'utf8')).toBe('two');
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
