// The runner's upload of committed steps while training goes on, against a file store made to
// fail or stall where a real store does (a 503 mid-pass, a slow PUT).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { saveCheckpoint, verifyStep } from '../../scripts/lib/ckpt/checkpoint.js';
import type { RunnerEvent } from '../../scripts/lib/runner/attempt-spec.js';
import { CheckpointSync } from '../../scripts/lib/runner/checkpoint-sync.js';
import { restoreLatest, storedSteps, uploadStep } from '../../scripts/lib/runner/store-checkpoints.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

const RUN = 'toy-default-20260101T0000-00000000';

let tmp: string;
let store: FileStore;
let ckpt: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ckpt-sync-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
  ckpt = path.join(tmp, 'ckpt');
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const save = (step: number) => saveCheckpoint(ckpt, step, { 'w.bin': `weights ${step}` }, { keep: 3 });
const committed = async () => (await storedSteps(store, RUN)).filter((s) => s.hasManifest).map((s) => s.step);

/** A store whose first `failures` PUTs wait until `fail()` is called, then reject as a 503 would. */
function storeFailingFirstPuts(failures: number) {
  let entered!: () => void;
  const firstPut = new Promise<void>((resolve) => (entered = resolve));
  let fail!: () => void;
  const failed = new Promise<void>((resolve) => (fail = resolve));
  let left = failures;
  const flaky = Object.create(store) as FileStore;
  flaky.put = async (...args) => {
    if (left <= 0) return store.put(...args);
    left--;
    entered();
    await failed;
    throw new Error('503 SlowDown');
  };
  return { flaky, firstPut, fail };
}

describe('checkpoint sync', () => {
  it('flush uploads the step saved at exit even when the pass in flight failed', async () => {
    const { flaky, firstPut, fail } = storeFailingFirstPuts(1);
    const events: RunnerEvent[] = [];
    const sync = new CheckpointSync(flaky, RUN, ckpt, 3, (e) => events.push(e));
    sync.init(null);
    await save(1);
    const inFlight = sync.tick().then(() => null, (err: Error) => err);
    await firstPut; // the pass is uploading step 1
    await save(2); // the experiment, stopped, saves its final step and exits
    const flushed = sync.flush();
    fail();
    expect((await inFlight)?.message).toBe('503 SlowDown');
    await flushed;
    expect(await committed()).toEqual([2]);
    expect(events.filter((e) => e.type === 'ckpt.committed').map((e) => e.type === 'ckpt.committed' && e.step)).toEqual([2]);
  });

  it('uploads a step the restore skipped as broken when the experiment saves it again', async () => {
    for (const step of [1, 2]) {
      const dir = await saveCheckpoint(path.join(tmp, 'earlier-attempt'), step, { 'w.bin': `weights ${step}` }, { keep: 3 });
      const checked = await verifyStep(dir);
      if (!checked.ok) throw new Error(checked.reason);
      await uploadStep(store, RUN, dir, checked.manifest);
    }
    writeFileSync(store.pathOf(`runs/${RUN}/ckpt/2/w.bin`), 'bit rot');
    const restored = await restoreLatest(store, RUN, ckpt, () => {});
    expect(restored).toBe(1);
    const sync = new CheckpointSync(store, RUN, ckpt, 3, () => {});
    sync.init(restored);
    await save(2); // the experiment goes on from step 1
    await sync.tick();
    expect(await restoreLatest(store, RUN, path.join(tmp, 'again'), () => {})).toBe(2);
  });

  it('flush fails when its own pass fails too', async () => {
    const { flaky, firstPut, fail } = storeFailingFirstPuts(2);
    const sync = new CheckpointSync(flaky, RUN, ckpt, 3, () => {});
    sync.init(null);
    await save(1);
    const inFlight = sync.tick().catch(() => {});
    await firstPut;
    await save(2);
    const flushed = sync.flush().then(() => null, (err: Error) => err);
    fail();
    await inFlight;
    expect((await flushed)?.message).toBe('503 SlowDown');
    expect(await committed()).toEqual([]);
  });

  it('a step the experiment prunes mid-upload still reaches the store whole', async () => {
    const { slow, blobStored, release } = storeHoldingAfterBlobs();
    const sync = new CheckpointSync(slow, RUN, ckpt, 3, () => {});
    sync.init(null);
    await save(1);
    const pass = sync.tick();
    await blobStored;
    for (const step of [2, 3, 4]) await save(step); // keeps 3: step 1 goes
    expect(existsSync(path.join(ckpt, '1'))).toBe(false);
    release();
    await pass;
    expect(await committed()).toEqual([1]);
    const again = path.join(tmp, 'again');
    expect(await restoreLatest(store, RUN, again, () => {})).toBe(1);
    expect(readFileSync(path.join(again, '1/w.bin'), 'utf8')).toBe('weights 1');
    expect(readdirSync(tmp)).not.toContain('ckpt-upload');
  });

  it('a step saved again mid-upload goes up as it was verified, its manifest and blobs together', async () => {
    const { slow, blobStored, release } = storeHoldingAfterBlobs();
    const sync = new CheckpointSync(slow, RUN, ckpt, 3, () => {});
    sync.init(null);
    await save(1);
    const pass = sync.tick();
    await blobStored;
    await saveCheckpoint(ckpt, 1, { 'w.bin': 'weights 1, saved again' }, { keep: 3 });
    release();
    await pass;
    const lines: string[] = [];
    expect(await restoreLatest(store, RUN, path.join(tmp, 'again'), (l) => lines.push(l))).toBe(1);
    expect(lines).toEqual([]);
    expect(readFileSync(path.join(tmp, 'again/1/w.bin'), 'utf8')).toBe('weights 1');
  });

  it('says so when a step is gone before the runner could take a copy', async () => {
    const events: RunnerEvent[] = [];
    await save(1);
    // The experiment's prune lands between finding the step and copying it.
    const sync = new CheckpointSync(store, RUN, ckpt, 3, (e) => events.push(e), async () => {}, async () => (rmSync(path.join(ckpt, '1'), { recursive: true }), true));
    sync.init(null);
    await sync.tick();
    expect(events).toEqual([{ type: 'notice', line: 'checkpoint step 1 not uploaded: removed or saved again before the runner could take a copy (the experiment keeps SWITCHYARD_CKPT_KEEP steps)' }]);
    expect(await storedSteps(store, RUN)).toEqual([]);
  });
});

/** A store that, once the first blob of a step is stored, holds the upload until `release()`: a slow link. */
function storeHoldingAfterBlobs() {
  let stored!: () => void;
  const blobStored = new Promise<void>((resolve) => (stored = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const slow = Object.create(store) as FileStore;
  slow.put = async (...args) => {
    const result = await store.put(...args);
    if (!args[0].endsWith('/manifest.json')) {
      stored();
      await released;
    }
    return result;
  };
  return { slow, blobStored, release };
}

