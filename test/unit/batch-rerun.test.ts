// A task Batch reruns after its VM failed is the same attempt: the rerun goes on from the
// attempt's event log as the store holds it, and settles what the failed run did to the store's
// steps without a word reaching the store (an upload, a prune cut short).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { saveCheckpoint, verifyStep } from '../../scripts/lib/ckpt/checkpoint.js';
import { AttemptFence, claimUnit } from '../../scripts/lib/runner/attempt-fence.js';
import { continueAttemptFiles, settleRerunSteps, stepsToSettle } from '../../scripts/lib/runner/attempt-rerun.js';
import type { RunnerEvent } from '../../scripts/lib/runner/attempt-spec.js';
import { storedSteps, uploadStep } from '../../scripts/lib/runner/store-checkpoints.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

const UNIT = 'demo-default-20261130T1200-0badf00d/shards/3';
const committed = (step: number): RunnerEvent => ({ type: 'ckpt.committed', step, manifest: `m${step}`, manifest_sha256: 'x' });
const pruned = (step: number): RunnerEvent => ({ type: 'ckpt.pruned', step });

describe('stepsToSettle', () => {
  it('finds stored steps no event names, and announced prunes the store still holds', () => {
    const events = [{ type: 'restored', step: 2 } as RunnerEvent, committed(3), committed(4), pruned(2), null, pruned(3)];
    const stored = [2, 4, 5, 6].map((step) => ({ step, hasManifest: step !== 6 }));
    // 5: uploaded, its event cut off; 6: blobs without a manifest (an upload cut short) is nothing yet; 2: pruned, not deleted
    expect(stepsToSettle(events, stored)).toEqual({ unnamed: [5], unfinished: [2] });
    expect(stepsToSettle([], [])).toEqual({ unnamed: [], unfinished: [] });
  });
});

describe('a rerun of an attempt', () => {
  let tmp: string;
  let store: FileStore;
  beforeEach(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'rerun-'));
    store = new FileStore('file://store', path.join(tmp, 'store'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  async function commit(step: number, attempt: number): Promise<{ key: string; sha256: string }> {
    const dir = await saveCheckpoint(path.join(tmp, `ckpt-${attempt}`), step, { 'model.json': `{"step":${step}}` }, { run_id: UNIT, attempt, keep: 10 });
    const checked = await verifyStep(dir);
    if (!checked.ok) throw new Error(checked.reason);
    return uploadStep(store, UNIT, dir, checked.manifest);
  }

  it("continues the store's copy of its files, and keeps a longer one of its own", async () => {
    await store.putBytes(`runs/${UNIT}/attempts/2/events.jsonl`, '{"type":"restored","step":null}\n');
    await store.putBytes(`runs/${UNIT}/attempts/2/stdout.log`, 'first run\n');
    const dir = path.join(tmp, 'attempt');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'stdout.log'), 'first run\nand more, kept on this disk\n');
    await continueAttemptFiles(store, UNIT, 2, dir);
    expect(readFileSync(path.join(dir, 'events.jsonl'), 'utf8')).toBe('{"type":"restored","step":null}\n');
    expect(readFileSync(path.join(dir, 'stdout.log'), 'utf8')).toBe('first run\nand more, kept on this disk\n');
  });

  it('announces its own unannounced upload (not an earlier attempt\'s), and finishes an announced prune', async () => {
    await commit(1, 1); // attempt 1's, recorded by attempt 1
    await commit(2, 2);
    const own = await commit(3, 2); // uploaded by the failed run; its event never reached the store
    const dir = path.join(tmp, 'attempt');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'events.jsonl'), [{ type: 'restored', step: 1 }, committed(2), pruned(1)].map((e) => JSON.stringify(e) + '\n').join(''));
    const emitted: RunnerEvent[] = [];
    await settleRerunSteps(store, UNIT, 2, dir, (e) => emitted.push(e));
    expect(emitted).toEqual([{ type: 'ckpt.committed', step: 3, manifest: own.key, manifest_sha256: own.sha256 }]);
    expect((await storedSteps(store, UNIT)).map((s) => s.step)).toEqual([2, 3]);
  });

  it('fences off the run before it: a VM given up stops writing the files they share', async () => {
    const before = new AttemptFence(store, UNIT, 3);
    await before.claim();
    expect(await before.stillCurrent()).toBe(true);
    const rerun = new AttemptFence(store, UNIT, 3, 1);
    await rerun.claim();
    expect(await before.stillCurrent()).toBe(false);
    expect([before.supersededBy, before.byRerun]).toEqual(['rerun 1 of attempt 3', true]);
    expect(await rerun.stillCurrent()).toBe(true);
    await claimUnit(store, UNIT, 4);
    expect(await rerun.stillCurrent()).toBe(false);
    expect([rerun.supersededBy, rerun.byRerun]).toEqual(['attempt 4', false]);
  });

  it('an older attempt or rerun that starts late does not take the unit back', async () => {
    await claimUnit(store, UNIT, 3);
    const late = new AttemptFence(store, UNIT, 2); // a requeued job of attempt 2, started after 3 was
    expect(await late.claim()).toBe(false);
    expect(await late.stillCurrent()).toBe(false);
    expect(late.supersededBy).toBe('attempt 3');
    expect(await new AttemptFence(store, UNIT, 3).stillCurrent()).toBe(true);
    await claimUnit(store, UNIT, 3, 2);
    const earlierRerun = new AttemptFence(store, UNIT, 3, 1);
    expect(await earlierRerun.claim()).toBe(false);
    expect([earlierRerun.supersededBy, earlierRerun.byRerun]).toEqual(['rerun 2 of attempt 3', true]);
    expect(JSON.parse((await store.getBytes(`runs/${UNIT}/attempts/current.json`))!.toString())).toEqual({ attempt: 3, rerun: 2 });
  });
});
