// A finished attempt leaves no second copy of what the store holds, and no output is forgotten.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ATTEMPT_FILES } from '../../scripts/lib/runner/attempt-spec.js';
import { mergedOutputs } from '../../scripts/lib/runner/outputs-manifest.js';
import { settleAttempt } from '../../scripts/lib/runner/work-tidy.js';
import { runKeys } from '../../scripts/lib/runs/run-record.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

const RUN = 'toy-default-20260101T0000-00000000';
let tmp: string;
let store: FileStore;
let work: string;

beforeEach(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'tidy-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
  work = path.join(tmp, 'work', RUN);
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

/** An attempt folder ended in `state`, with every file also in the store unless left out. */
async function attempt(n: number | 'predict', state: string, notStored: string[] = []) {
  const dir = path.join(work, 'attempts', String(n));
  mkdirSync(dir, { recursive: true });
  mkdirSync(path.join(work, 'ckpt', '3'), { recursive: true });
  writeFileSync(path.join(work, 'ckpt', '3', 'manifest.json'), '{}');
  for (const name of ATTEMPT_FILES) {
    const file = path.join(dir, name);
    writeFileSync(file, name === 'status.json' ? JSON.stringify({ state }) : `${name} `.repeat(1000));
    if (!notStored.includes(name)) await store.put(runKeys.attemptFile(RUN, n, name), file);
  }
  return dir;
}

describe('settleAttempt', () => {
  it('removes a succeeded run\'s work folder once the store holds its files and outputs', async () => {
    await attempt(1, 'succeeded');
    mkdirSync(path.join(work, 'output'));
    writeFileSync(path.join(work, 'output', 'model.json'), '{}');
    await settleAttempt(store, work, RUN, 1);
    expect(existsSync(path.join(work, 'attempts', '1'))).toBe(false);
    expect(existsSync(path.join(work, 'ckpt'))).toBe(true); // outputs not stored yet
    await store.putBytes(runKeys.outputsManifest(RUN), '{"files":[]}');
    await attempt(1, 'succeeded');
    await settleAttempt(store, work, RUN, 1);
    expect(existsSync(work)).toBe(false);
  });

  it('keeps the checkpoints of an unfinished run, stores what the store lacks before tidying, and leaves a running attempt alone', async () => {
    const dir = await attempt(1, 'preempted');
    await settleAttempt(store, work, RUN, 1);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(path.join(work, 'ckpt', '3', 'manifest.json'))).toBe(true);

    // A lost runner's last output, missing from the store: brought in first, then tidied.
    const lost = await attempt(2, 'lost', ['stdout.log']);
    const lastWords = readFileSync(path.join(lost, 'stdout.log'));
    await settleAttempt(store, work, RUN, 2);
    expect(await store.getBytes(runKeys.attemptFile(RUN, 2, 'stdout.log'))).toEqual(lastWords);
    expect(existsSync(lost)).toBe(false);

    const running = await attempt(3, 'running');
    await settleAttempt(store, work, RUN, 3);
    expect(existsSync(running)).toBe(true); // nothing is final yet
  });

  it('after a predict, removes the work folder only when the stored run record says the run succeeded', async () => {
    const record = (state: string) => store.putBytes(runKeys.record(RUN), JSON.stringify({ run_id: RUN, attempts: [{ n: 1, state }] }));
    await record('running'); // a predict run= of an unfinished run
    const dir = await attempt('predict', 'succeeded');
    await settleAttempt(store, work, RUN, 'predict');
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(path.join(work, 'ckpt', '3'))).toBe(true);

    await record('succeeded');
    await attempt('predict', 'succeeded');
    await settleAttempt(store, work, RUN, 'predict');
    expect(existsSync(work)).toBe(false);
  });
});

describe('mergedOutputs', () => {
  it("adds an attempt's outputs to those the run saved before, replacing a file of the same path", async () => {
    expect(await mergedOutputs(store, RUN, [{ path: 'model.json', sha256: 'a' }])).toEqual([{ path: 'model.json', sha256: 'a' }]);
    await store.putBytes(runKeys.outputsManifest(RUN), JSON.stringify({ files: [{ path: 'model.json', sha256: 'a' }, { path: 'submission.csv', sha256: 'b' }] }));
    expect(await mergedOutputs(store, RUN, [{ path: 'submission.csv', sha256: 'c' }])).toEqual([
      { path: 'model.json', sha256: 'a' },
      { path: 'submission.csv', sha256: 'c' },
    ]);
  });
});
