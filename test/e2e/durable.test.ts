// No lost progress: preemption of the experiment itself, and a "fresh machine" that has only
// the store, both end in an automatic resume and the same result as an uninterrupted run.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
let storeDir: string;

beforeAll(() => {
  sb = createSandbox();
  // The store lives outside .switchyard, as a shared bucket would: deleting the local state
  // then leaves only what another machine could see.
  storeDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-store-'));
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  writeFileSync(config, readFileSync(config, 'utf8').replace("store: 'file://.switchyard/store'", `store: 'file://${storeDir}'`));
  sb.git(['commit', '-qam', 'shared store']);
});
afterAll(() => {
  sb?.cleanup();
  rmSync(storeDir, { recursive: true, force: true });
});

const runDir = (id: string) => path.join(storeDir, 'runs', id);
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const committed = (id: string) =>
  existsSync(path.join(runDir(id), 'ckpt'))
    ? readdirSync(path.join(runDir(id), 'ckpt')).filter((s) => existsSync(path.join(runDir(id), 'ckpt', s, 'manifest.json'))).map(Number)
    : [];
const record = (id: string) => JSON.parse(readFileSync(path.join(runDir(id), 'run.json'), 'utf8'));

/** Pids of processes started for a run: they carry its id in their environment. */
function experimentPids(runId: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`SWITCHYARD_RUN_ID=${runId}`) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('train.py');
      } catch {
        return false;
      }
    })
    .map(Number);
}

function sameResult(a: string, b: string, attemptA: number, attemptB: number) {
  const file = (id: string, rel: string) => readFileSync(path.join(runDir(id), rel));
  expect(file(a, 'outputs/model.json').equals(file(b, 'outputs/model.json'))).toBe(true);
  expect(file(a, 'outputs/submission.csv').equals(file(b, 'outputs/submission.csv'))).toBe(true);
  const last = (id: string, n: number) => file(id, `attempts/${n}/metrics.jsonl`).toString().trim().split('\n').at(-1);
  expect(last(a, attemptA)).toBe(last(b, attemptB));
}

describe('durable runs', () => {
  it('SIGTERM to the experiment: it checkpoints, attempt 2 starts by itself and ends as an uninterrupted run', async () => {
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'seed=3']);
    await waitFor(() => !!runIdIn(p.output()) && committed(runIdIn(p.output())!).length >= 1, 30_000, 'a committed checkpoint');
    const id = runIdIn(p.output())!;
    const pids = experimentPids(id);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    const code = await new Promise((r) => p.on('close', r));
    expect(code, p.output()).toBe(0);
    expect(p.output()).toMatch(/attempt 1 preempted: the experiment exited 75 \(checkpointed, resume me\); starting attempt 2/);
    const run = record(id);
    expect(run.attempts.map((a: { state: string }) => a.state)).toEqual(['preempted', 'succeeded']);
    expect(run.attempts[1].restored_step).toBe(run.attempts[0].last_step);
    expect(sb.make(['predict', `run=${id}`]).code).toBe(0);

    const again = sb.make(['train', 'experiment=penguins/fast', 'seed=3', 'again=1']);
    const ref = runIdIn(again.stdout + again.stderr)!;
    expect(sb.make(['predict', `run=${ref}`]).code).toBe(0);
    sameResult(id, ref, 2, 1);
  });

  it('a fresh machine with only the store finds the run by its pins and resumes it from the store', async () => {
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'seed=4']);
    await waitFor(() => !!runIdIn(p.output()) && committed(runIdIn(p.output())!).length >= 2, 30_000, 'two committed checkpoints');
    const id = runIdIn(p.output())!;
    process.kill(-p.pid!, 'SIGKILL');
    await new Promise((r) => p.on('close', r));
    const step = Math.max(...committed(id));

    rmSync(path.join(sb.dir, '.switchyard'), { recursive: true, force: true }); // state db, work dir, caches, ledger
    const resumed = sb.make(['train', 'experiment=penguins/fast', 'seed=4']);
    const out = resumed.stdout + resumed.stderr;
    expect(resumed.code, out).toBe(0);
    expect(out).toContain(`resuming run ${id}`);
    expect(out).toContain(`resuming from committed checkpoint step ${step}`);
    expect(sb.make(['predict', `run=${id}`]).code).toBe(0);

    const again = sb.make(['train', 'experiment=penguins/fast', 'seed=4', 'again=1']);
    const ref = runIdIn(again.stdout + again.stderr)!;
    expect(sb.make(['predict', `run=${ref}`]).code).toBe(0);
    sameResult(id, ref, 2, 1);

    const pulled = sb.make(['pull', `run=${id}`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    const local = path.join(sb.dir, 'outputs', id);
    expect(readFileSync(path.join(local, 'outputs/submission.csv')).equals(readFileSync(path.join(runDir(id), 'outputs/submission.csv')))).toBe(true);
    expect(existsSync(path.join(local, 'attempts/2/metrics.jsonl'))).toBe(true);
    expect(sb.make(['verify']).code).toBe(0);
  });
});
