// make logs of an attempt that only the store holds (a prediction, or an attempt never placed):
// the log streamed from the store as text; no log is one line naming the run and attempt.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runLogs } from '../../scripts/lib/actions/logs.js';
import type { Project } from '../../scripts/lib/project.js';
import { runKeys, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { UserError } from '../../scripts/lib/ui/errors.js';

let tmp: string;
let store: FileStore;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'logs-action-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const run = { run_id: 'toy-default-20260101T0000-00000000', sharded: false, units: [{ attempts: [] }] } as unknown as RunRecord;

async function text(logs: AsyncIterable<string>): Promise<string> {
  let all = '';
  for await (const chunk of logs) all += chunk;
  return all;
}

describe('runLogs from the store', () => {
  it('streams a stored prediction log as text, and names what is missing in one line', async () => {
    const project = { store } as unknown as Project;
    const log = 'predicting… 100 rows\n'.repeat(10_000);
    await store.putBytes(runKeys.attemptFile(run.run_id, 'predict', 'stdout.log'), log);
    expect(await text(runLogs(project, run, { attempt: 'predict', stream: 'stdout', follow: false }))).toBe(log);
    await expect(text(runLogs(project, run, { attempt: 'predict', stream: 'stderr', follow: false }))).rejects.toThrow(
      new UserError(`logs: run ${run.run_id} has no stderr log for attempt predict`),
    );
  });

  it('refuses a shard other than 0 of a run of one unit, instead of showing its prediction log', async () => {
    const project = { store } as unknown as Project;
    await store.putBytes(runKeys.attemptFile(run.run_id, 'predict', 'stdout.log'), 'predicting… 100 rows\n');
    await expect(text(runLogs(project, run, { shard: 3, stream: 'stdout', follow: false }))).rejects.toThrow(
      new UserError(`logs: run ${run.run_id} is not sharded (one unit, shard 0); leave out shard=3`),
    );
  });

  it('names the attempts a run has when asked for one it does not have', async () => {
    const project = { store } as unknown as Project;
    const two = { ...run, units: [{ attempts: [{ n: 1, handle: null }, { n: 2, handle: null }] }] } as unknown as RunRecord;
    await expect(text(runLogs(project, two, { attempt: 5, stream: 'stdout', follow: false }))).rejects.toThrow(
      new UserError(`logs: run ${run.run_id} has no attempt 5; its attempts are 1-2`),
    );
  });

  it('shows the newest attempt\'s stored log when it has no handle, not the prediction\'s; a run with no attempt says so', async () => {
    const project = { store } as unknown as Project;
    const queued = { ...run, units: [{ attempts: [{ n: 1, handle: null }] }] } as unknown as RunRecord;
    await store.putBytes(runKeys.attemptFile(run.run_id, 'predict', 'stdout.log'), 'predicting\n');
    await store.putBytes(runKeys.attemptFile(run.run_id, 1, 'stdout.log'), 'epoch 1\n');
    expect(await text(runLogs(project, queued, { stream: 'stdout', follow: false }))).toBe('epoch 1\n');
    await expect(text(runLogs(project, run, { stream: 'stdout', follow: false }))).rejects.toThrow(
      new UserError(`logs: run ${run.run_id} has no attempts yet (make status run=${run.run_id} says where it stands)`),
    );
  });
});
