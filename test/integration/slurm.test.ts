// The SLURM route against a real single-node cluster (munged, slurmctld, slurmd from Debian's
// packages, test/helpers/slurm.ts), its login node an ssh host in a network namespace
// (test/helpers/ssh-hosts.ts) that runs the daemons too, so its jobs see its files: training,
// a job array merged, a requeue and a USR1 mid-run resumed from the checkpoint, and time limits.
// Every wait is for an event (a ledger line, a process ending), never a fixed sleep.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type Sandbox } from '../helpers/sandbox.js';
import { startSlurmTestBed, type TestSlurm } from '../helpers/slurm.js';
import type { TestHosts } from '../helpers/ssh-hosts.js';

let hosts: TestHosts;
let slurm: TestSlurm;
let sb: Sandbox;
/** The time-limit runs, started first: they spend their time waiting for SLURM's time-limit check (every 30 s). */
const spawned: ReturnType<Sandbox['spawnMake']>[] = [];
function spawnMake(args: string[]) {
  const p = sb.spawnMake(args);
  spawned.push(p);
  return p;
}
let timeLimited: { withCkpt: ReturnType<Sandbox['spawnMake']>; without: ReturnType<Sandbox['spawnMake']>; ended: Promise<(number | null)[]> };

// Runs until stopped; checkpoints once first when STALL_CKPT=1; a resumed attempt finishes at once.
const STALL_PY = `import os, sys, time
import switchyard_ckpt as ckpt
if ckpt.latest():
    open(os.path.join(os.environ["SWITCHYARD_OUTPUT_DIR"], "done.txt"), "w").write("resumed\\n")
    sys.exit(0)
if os.environ.get("STALL_CKPT") == "1":
    ckpt.save(1, {"state.txt": "1"})
print("stalling", flush=True)
while True:
    time.sleep(0.2)
`;

beforeAll(async () => {
  ({ hosts, slurm, sb } = await startSlurmTestBed(1, 'syslurm', "    lab: { login: 'h1', preemptible: true, lost_after_sec: 60 },\n    short: { login: 'h1', time: '1m' },"));
  const penguins = path.join(sb.dir, 'competitions/penguins');
  const fast = readFileSync(path.join(penguins, 'experiments/fast.yaml'), 'utf8');
  writeFileSync(path.join(penguins, 'experiments/slow.yaml'), fast.replace('EPOCHS: "1600"', 'EPOCHS: "4800"'));
  writeFileSync(path.join(penguins, 'stall.py'), STALL_PY);
  const stall = (ckpt: string) => `train:\n  command: python3 stall.py\n  grace_sec: 5\n  env: { STALL_CKPT: "${ckpt}" }\nseed: 1\n`;
  writeFileSync(path.join(penguins, 'experiments/stall-ckpt.yaml'), stall('1'));
  writeFileSync(path.join(penguins, 'experiments/stall.yaml'), stall('0'));
  const knn = path.join(sb.dir, 'competitions/knn');
  writeFileSync(path.join(knn, 'experiments/four.yaml'), readFileSync(path.join(knn, 'experiments/fleet.yaml'), 'utf8').replace('count: 6', 'count: 4'));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'slurm test cluster']);
  const r = sb.make(['bootstrap', 'host=h1'], { timeoutMs: 120_000 });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const withCkpt = spawnMake(['train', 'experiment=penguins/stall-ckpt', 'backend=slurm', 'cluster=short']);
  const without = spawnMake(['train', 'experiment=penguins/stall', 'backend=slurm', 'cluster=short']);
  timeLimited = { withCkpt, without, ended: Promise.all([withCkpt, without].map((p) => new Promise<number | null>((resolve) => p.on('close', resolve)))) };
}, 180_000);

afterAll(async () => {
  // make processes a failed test left behind (each leads its own process group)
  const left = spawned.filter((p) => p.exitCode === null && p.signalCode === null && p.pid);
  for (const p of left) process.kill(-p.pid!, 'SIGKILL');
  await Promise.all(left.map((p) => new Promise((r) => p.once('exit', r))));
  await slurm?.cleanup();
  await hosts?.cleanup();
  sb?.cleanup();
});

const store = (rel: string) => path.join(sb.dir, '.switchyard/store', rel);
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const runJson = (id: string) => JSON.parse(readFileSync(store(`runs/${id}/run.json`), 'utf8'));

function make(args: string[]) {
  const r = sb.make(args, { timeoutMs: 240_000 });
  return { ...r, out: r.stdout + r.stderr };
}

/** The run's `ckpt.committed` ledger entries so far. */
function commits(id: string | undefined): number {
  const ledger = path.join(sb.dir, '.switchyard/ledger.jsonl');
  if (!id || !existsSync(ledger)) return 0;
  return readFileSync(ledger, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"ckpt.committed"') && l.includes(`"run_id":"${id}"`)).length;
}

/** A local run's submission.csv for an experiment, for comparison (once per experiment). */
const references = new Map<string, Buffer>();
function localSubmission(experiment: string): Buffer {
  const known = references.get(experiment);
  if (known) return known;
  const r = make(['train', `experiment=${experiment}`, 'again=1']);
  expect(r.code, r.out).toBe(0);
  const id = runIdIn(r.out)!;
  expect(make(['predict', `run=${id}`]).code).toBe(0);
  references.set(experiment, readFileSync(store(`runs/${id}/outputs/submission.csv`)));
  return references.get(experiment)!;
}

function submission(id: string): Buffer {
  const p = make(['predict', `run=${id}`]);
  expect(p.code, p.out).toBe(0);
  return readFileSync(store(`runs/${id}/outputs/submission.csv`));
}

/** Starts a slurm training in the background; resolves its job id once it has committed a checkpoint. */
async function startInterruptible(): Promise<{ done: Promise<number | null>; output: () => string; id: () => string; job: string }> {
  const p = spawnMake(['train', 'experiment=penguins/slow', 'backend=slurm', 'cluster=lab', 'again=1']);
  const done = new Promise<number | null>((r) => p.on('close', r));
  const id = () => runIdIn(p.output())!;
  await waitFor(() => commits(runIdIn(p.output())) >= 2 || p.exitCode !== null, 120_000, 'checkpoints from the cluster');
  const job = runJson(id()).attempts[0].handle.job as string;
  return { done, output: p.output, id, job };
}

describe('slurm backend', () => {
  it('trains penguins through sbatch on a login node over ssh; its submission equals a local run', () => {
    const r = make(['train', 'experiment=penguins/fast', 'backend=slurm', 'cluster=lab']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/✓ lab: login h1: project (synced|unpacked)/);
    const id = runIdIn(r.out)!;
    const run = runJson(id);
    expect(run.attempts).toMatchObject([{ backend: 'slurm', state: 'succeeded', handle: { cluster: 'lab', job: expect.stringMatching(/^\d+$/) } }]);
    // The script SLURM ran, kept beside its output on the login node.
    expect(readFileSync(path.join(hosts.hosts[0]!.home, `switchyard/scratch/${id}/slurm/${run.attempts[0].handle.job}.err`), 'utf8')).toBe('');
    expect(make(['status', `run=${id}`]).stdout).toMatch(new RegExp(`1\\s+slurm\\s+lab job ${run.attempts[0].handle.job}\\s+succeeded`));
    expect(make(['logs', `run=${id}`]).stdout).toContain('done: 1600 epochs');
    expect(submission(id).equals(localSubmission('penguins/fast'))).toBe(true);
    expect(make(['verify']).code).toBe(0);
  });

  it('a 4-shard knn search runs as job arrays no larger than MaxArraySize (3 here) and merges to the local result', () => {
    const r = make(['train', 'experiment=knn/four', 'backend=slurm', 'cluster=lab']);
    expect(r.code, r.out).toBe(0);
    const id = runIdIn(r.out)!;
    const jobs = runJson(id).shards.map((s: { attempts: { handle: { job: string } }[] }) => s.attempts[0]!.handle.job);
    const array = jobs[0].split('_')[0];
    expect(jobs.slice(0, 3)).toEqual([0, 1, 2].map((i) => `${array}_${i}`));
    expect(jobs[3]).toMatch(/^\d+$/); // the fourth alone: a job, not an array
    expect(jobs[3]).not.toBe(array);
    const local = make(['train', 'experiment=knn']);
    expect(local.code, local.out).toBe(0);
    const reference = readFileSync(store(`runs/${runIdIn(local.out)}/outputs/shard-0-of-1.jsonl`), 'utf8').split('\n').slice(1).join('\n');
    expect(readFileSync(store(`runs/${id}/outputs/merged.jsonl`), 'utf8')).toBe(reference);
  });

  it('scontrol requeue mid-run: the runner checkpoints, SLURM runs the job again, it resumes; output as uninterrupted', async () => {
    const run = await startInterruptible();
    await slurm.client(['scontrol', 'requeue', run.job]);
    expect(await run.done, run.output()).toBe(0);
    const [attempt] = runJson(run.id()).attempts;
    expect(runJson(run.id()).attempts).toHaveLength(1); // SLURM's restart is the same attempt
    expect(attempt).toMatchObject({ state: 'succeeded', handle: { job: run.job } });
    const events = readFileSync(path.join(hosts.hosts[0]!.home, `switchyard/scratch/${run.id()}/attempts/1/events.jsonl`), 'utf8');
    const restored = events.split('\n').filter((l) => l.includes('"restored"')).map((l) => JSON.parse(l).step);
    expect(restored[0]).toBeNull();
    expect(restored[1]).toBeGreaterThan(0);
    expect(submission(run.id()).equals(localSubmission('penguins/slow'))).toBe(true);
  }, 300_000);

  it('scancel --signal=USR1 --batch mid-run: checkpoint, a new job resumes from it; output as uninterrupted', async () => {
    const run = await startInterruptible();
    await slurm.client(['scancel', '--signal=USR1', '--batch', run.job]);
    expect(await run.done, run.output()).toBe(0);
    const attempts = runJson(run.id()).attempts;
    expect(attempts.map((a: { state: string }) => a.state)).toEqual(['preempted', 'succeeded']);
    expect(attempts[0].reason).toBe('the runner was sent SIGUSR1');
    expect(attempts[1].handle.job).not.toBe(run.job);
    expect(run.output()).toMatch(/resuming from committed checkpoint step \d+/);
    expect(submission(run.id()).equals(localSubmission('penguins/slow'))).toBe(true);
  }, 300_000);

  it('make stop: the runner checkpoints and stops at USR1, the attempt ends cancelled, the job is gone', async () => {
    const run = await startInterruptible();
    const stop = make(['stop', `run=${run.id()}`]);
    expect(stop.code, stop.out).toBe(0);
    expect(await run.done).toBe(2); // make's own code for a failed recipe; the verb's is 130
    expect(run.output()).toMatch(/make: \*\*\* \[Makefile:\d+: train\] Error 130/);
    const [attempt] = runJson(run.id()).attempts;
    expect(attempt).toMatchObject({ state: 'cancelled', reason: 'stopped by the user' });
    expect(attempt.last_step).toBeGreaterThan(0);
    expect((await slurm.client(['squeue', '-h', '-j', run.job, '-o', '%T'])).trim()).not.toMatch(/RUNNING|PENDING/);
  }, 300_000);

  it('a short --time: with a checkpoint the unit resumes in a new attempt; without, it ends timeout, not retried', async () => {
    const { withCkpt, without } = timeLimited;
    const [a, b] = await timeLimited.ended;
    expect(a, withCkpt.output()).toBe(0);
    const resumed = runJson(runIdIn(withCkpt.output())!).attempts;
    expect(resumed.map((x: { state: string }) => x.state)).toEqual(['timeout', 'succeeded']);
    expect(resumed[0].reason).toBe("reached the SLURM job's time limit (SIGUSR1 before it)");
    expect(b, without.output()).not.toBe(0);
    const gaveUp = runJson(runIdIn(without.output())!).attempts;
    expect(gaveUp.map((x: { state: string }) => x.state)).toEqual(['timeout']);
  }, 300_000);
});
