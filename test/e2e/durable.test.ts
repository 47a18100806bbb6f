// No lost progress, on both kinds of store: preemption of the experiment itself, and a
// "fresh machine" that has only the store, both end in an automatic resume and the same
// result as an uninterrupted run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, experimentPids, holdExperiment, holdMidRun, waitFor, type Sandbox } from '../helpers/sandbox.js';
import { startS3rver, useS3rverStore, type S3rver } from '../helpers/s3rver.js';

const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];

describe.each(['file', 's3'] as const)('durable runs on a %s store', (kind) => {
  let sb: Sandbox;
  let storeDir: string | null = null;
  let s3: S3rver | null = null;

  beforeAll(async () => {
    sb = createSandbox();
    // The store lives outside .switchyard, as a shared bucket would: deleting the local state
    // then leaves only what another machine could see.
    if (kind === 'file') {
      storeDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-store-'));
      const config = path.join(sb.dir, 'cluster_fleet_config.ts');
      writeFileSync(config, readFileSync(config, 'utf8').replace("store: 'file://.switchyard/store',", `store: 'file://${storeDir}',`));
    } else {
      s3 = await startS3rver();
      useS3rverStore(sb.dir, s3, 'team/runs');
    }
    sb.git(['commit', '-qam', 'shared store']);
  });
  afterAll(async () => {
    sb?.cleanup();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
    await s3?.stop();
  });

  /** The run as another machine would get it back: pulled from the store. */
  function pulled(id: string) {
    const r = sb.make(['pull', `run=${id}`]);
    expect(r.code, r.stderr).toBe(0);
    const dir = path.join(sb.dir, 'outputs', id);
    return {
      run: JSON.parse(readFileSync(path.join(dir, 'run.json'), 'utf8')),
      file: (rel: string) => readFileSync(path.join(dir, rel)),
      lastMetric: (n: number) => readFileSync(path.join(dir, `attempts/${n}/metrics.jsonl`), 'utf8').trim().split('\n').at(-1),
    };
  }
  function sameResult(a: string, b: string, attemptA: number) {
    const [x, y] = [pulled(a), pulled(b)];
    expect(x.file('outputs/model.json').equals(y.file('outputs/model.json'))).toBe(true);
    expect(x.file('outputs/submission.csv').equals(y.file('outputs/submission.csv'))).toBe(true);
    expect(x.lastMetric(attemptA)).toBe(y.lastMetric(1));
  }

  it('SIGTERM to the experiment: it checkpoints, attempt 2 starts by itself and ends as an uninterrupted run', async () => {
    const hold = await holdExperiment(sb);
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'seed=3']);
    const { pid, runId: id } = await holdMidRun(sb, hold, 1);
    process.kill(pid, 'SIGTERM');
    process.kill(-pid, 'SIGCONT'); // the group the hold stopped
    const code = await new Promise((r) => p.on('close', r));
    expect(code, p.output()).toBe(0);
    expect(p.output()).toMatch(/attempt 1 preempted: the experiment exited 75 \(checkpointed, resume me\); starting attempt 2/);
    const { run } = pulled(id);
    expect(run.attempts.map((a: { state: string }) => a.state)).toEqual(['preempted', 'succeeded']);
    expect(run.attempts[1].restored_step).toBe(run.attempts[0].last_step);
    const predicted = sb.make(['predict', `run=${id}`]);
    expect(predicted.code, predicted.stdout + predicted.stderr).toBe(0);

    const again = sb.make(['train', 'experiment=penguins/fast', 'seed=3', 'again=1']);
    const ref = runIdIn(again.stdout + again.stderr)!;
    const refPredicted = sb.make(['predict', `run=${ref}`]);
    expect(refPredicted.code, refPredicted.stdout + refPredicted.stderr).toBe(0);
    sameResult(id, ref, 2);
  });

  it('a fresh machine with only the store finds the run by its pins and resumes it from the store', async () => {
    const hold = await holdExperiment(sb);
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'seed=4']);
    const { runId: id } = await holdMidRun(sb, hold, 2);
    process.kill(-p.pid!, 'SIGKILL');
    await new Promise((r) => p.on('close', r));
    await waitFor(() => experimentPids(id).length === 0, 30_000, 'the experiment to be killed with its runner');

    rmSync(path.join(sb.dir, '.switchyard'), { recursive: true, force: true }); // state db, work dir, caches, ledger
    const resumed = sb.make(['train', 'experiment=penguins/fast', 'seed=4']);
    const out = resumed.stdout + resumed.stderr;
    expect(resumed.code, out).toBe(0);
    expect(out).toContain(`resuming run ${id}`);
    expect(out, out).toMatch(/resuming from committed checkpoint step [1-9]\d*/);
    const predicted = sb.make(['predict', `run=${id}`]);
    expect(predicted.code, predicted.stdout + predicted.stderr).toBe(0);

    const again = sb.make(['train', 'experiment=penguins/fast', 'seed=4', 'again=1']);
    const ref = runIdIn(again.stdout + again.stderr)!;
    const refPredicted = sb.make(['predict', `run=${ref}`]);
    expect(refPredicted.code, refPredicted.stdout + refPredicted.stderr).toBe(0);
    sameResult(id, ref, 2);
    expect(sb.make(['verify']).code).toBe(0);
  });
});
