// The gcp-batch route end to end: `make train backend=gcp-batch` with a real S3 server (s3rver)
// as the store and the Batch stand-in as Google Cloud Batch, driven by the real client. Each
// task runs the rendered job's own script as a local process: it fetches the Node runtime, the
// runner and the packed project from the store by SHA-256 and runs its unit into the store.
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBatchStandin, type BatchStandin } from '../helpers/batch-standin/index.js';
import { checkMessage } from '../helpers/batch-standin/proto-check.js';
import { S3RVER_KEYS, s3rverObjectPath, startS3rver, useS3rverStore, type S3rver } from '../helpers/s3rver.js';
import { createSandbox, shardCommits, waitFor, type Sandbox } from '../helpers/sandbox.js';

const PREFIX = 'team';
const SECRET = (name: string) => `projects/my-project/secrets/${name}/versions/1`;

let sb: Sandbox;
let s3: S3rver;
let standin: BatchStandin;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  s3 = await startS3rver('switchyard-batch');
  standin = await startBatchStandin({ secrets: { [SECRET('key-id')]: S3RVER_KEYS.accessKeyId, [SECRET('key')]: S3RVER_KEYS.secretAccessKey } });
  sb = createSandbox();
  useS3rverStore(sb.dir, s3, PREFIX);
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  writeFileSync(
    config,
    readFileSync(config, 'utf8').replace(
        '  batch: {},',
        // retries: 1, so a task's first preemption is a Batch rerun and its second ends the attempt
        `  batch: {\n    cpu: { project: 'my-project', region: 'us-central1', machine_type: 'e2-standard-2', retries: 1, secrets: { AWS_ACCESS_KEY_ID: '${SECRET('key-id')}', AWS_SECRET_ACCESS_KEY: '${SECRET('key')}' } },\n  },`,
      ),
  );
  const base = readFileSync(path.join(sb.dir, 'competitions/knn/experiment.yaml'), 'utf8');
  // 8 shards, slow enough to preempt one twice: a pause after each unit. The stop test's shards
  // pause longer: a shard of 3 or 4 units must still be short of its last when make status and
  // make stop, two processes on a loaded machine, have come and gone after its first checkpoint.
  const shardedBy = (pauseSec: number) =>
    base.replace('count: 1', 'count: 8').replace('  checkpoint_every_sec: 1', `  checkpoint_every_sec: 0.5\n  grace_sec: 20\n  env: { KNN_UNIT_PAUSE_SEC: "${pauseSec}" }`);
  writeFileSync(path.join(sb.dir, 'competitions/knn/experiments/batch.yaml'), shardedBy(3));
  writeFileSync(path.join(sb.dir, 'competitions/knn/experiments/batch-stop.yaml'), shardedBy(8));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'test batch on s3']);
  // npm's Node runtime package, as this machine's cache holds it: here, one pointing at this Node.
  const pkg = path.join(sb.dir, '.switchyard/node-pkg');
  mkdirSync(path.join(pkg, 'package/bin'), { recursive: true });
  symlinkSync(process.execPath, path.join(pkg, 'package/bin/node'));
  const cache = path.join(sb.dir, '.switchyard/cache/node-runtime');
  mkdirSync(cache, { recursive: true });
  const arch = os.arch() === 'arm64' ? 'arm64' : 'x64';
  execFileSync('tar', ['-czf', path.join(cache, `node-linux-${arch}-${process.versions.node}.tgz`), '-C', pkg, 'package']);
  const { apiEndpoint, port, token } = standin.clientOptions;
  env = { SWITCHYARD_BATCH_ENDPOINT: `http://${apiEndpoint}:${port}`, SWITCHYARD_BATCH_TOKEN: token, METADATA_SERVER_DETECTION: 'none' };
}, 120_000);

afterAll(async () => {
  await standin?.close();
  await s3?.stop();
  sb?.cleanup();
});

const stored = (key: string) => readFileSync(s3rverObjectPath(s3, `${PREFIX}/${key}`));
/** The run's record as the store holds it; null before it is there, or while it is being replaced. */
const storedRecord = (id: string | undefined) => {
  try {
    return id ? JSON.parse(stored(`runs/${id}/run.json`).toString()) : null;
  } catch {
    return null;
  }
};
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
/** `make` without blocking this process: the stand-in answers the verbs from here. */
const make = async (args: string[]) => {
  const p = sb.spawnMake(args, env);
  let code: number | null | undefined;
  p.on('close', (c) => (code = c));
  // A verb that never ends fails here saying which and what it printed, not as the test's timeout.
  await waitFor(() => code !== undefined, 300_000, () => `make ${args.join(' ')} to end: ${p.output().slice(-4000)}`);
  return { code: code!, out: p.output(), stdout: p.output() };
};
/** The jobs the stand-in was asked to create, in order. */
const jobsCreated = () => [...new Set(standin.history.filter((e) => e.task === undefined && e.state === 'SCHEDULED').map((e) => e.job))];

describe('gcp-batch backend', () => {
  it('trains penguins as a Batch task; its submission equals a local run\'s', async () => {
    const batch = await make(['train', 'experiment=penguins/fast', 'backend=gcp-batch']);
    expect(batch.code, batch.out).toBe(0);
    const id = runIdIn(batch.out)!;
    const run = JSON.parse(stored(`runs/${id}/run.json`).toString());
    expect(run.attempts).toMatchObject([{ backend: 'gcp-batch', state: 'succeeded', handle: { backend: 'gcp-batch', entry: 'cpu', task: 0, unit: id, attempt: 1 } }]);
    const job = standin.job(run.attempts[0].handle.job);
    expect(job?.state).toBe('SUCCEEDED');
    // What the client sent is a valid v1 Job (the client drops unknown fields silently).
    expect(() => checkMessage(job!.spec, 'Job', 'job')).not.toThrow();
    // The runner's checkpoints reached the store and the ledger.
    expect(readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8')).toMatch(new RegExp(`"type":"ckpt.committed","run_id":"${id}"`));

    // Its output, as the runner copied it to the store.
    expect((await make(['logs', `run=${id}`])).out).toContain('done: 1600 epochs');
    expect((await make(['predict', `run=${id}`])).code).toBe(0);
    const local = await make(['train', 'experiment=penguins/fast', 'again=1']);
    expect(local.code, local.out).toBe(0);
    const ref = runIdIn(local.out)!;
    expect((await make(['predict', `run=${ref}`])).code).toBe(0);
    expect(stored(`runs/${id}/outputs/submission.csv`).equals(stored(`runs/${ref}/outputs/submission.csv`))).toBe(true);
  }, 600_000);

  it('8 shards in one job; a task preempted twice resumes from its checkpoint (a Batch rerun, then a new attempt); the merge equals the local search', async () => {
    const local = await make(['train', 'experiment=knn']);
    expect(local.code, local.out).toBe(0);
    const reference = stored(`runs/${runIdIn(local.out)}/outputs/shard-0-of-1.jsonl`).toString().split('\n').slice(1).join('\n');

    const before = jobsCreated().length;
    const p = sb.spawnMake(['train', 'experiment=knn/batch', 'backend=gcp-batch'], env);
    let firstStep = 0;
    let job: string | undefined;
    try {
      await waitFor(() => shardCommits(sb, runIdIn(p.output()), 3).length > 0, 180_000, 'a committed checkpoint of shard 3');
      [job] = jobsCreated().slice(before);
      expect(standin.job(job!)!.tasks).toHaveLength(8);
      firstStep = Math.max(...shardCommits(sb, runIdIn(p.output()), 3).map((c) => c.step));
      // Batch reruns it (retries: 1) as the same attempt, which resumes and commits a newer step.
      // A newer step in the ledger alone may be the preempted run's last (its events are read
      // after it ended): the rerun is known by the step it restored, in the record.
      await standin.preempt(job!, 3);
      await standin.waitFor((e) => e.job === job && e.task === 3 && e.state === 'RUNNING' && e.attempt === 1, { what: 'the rerun running' });
      await waitFor(
        () => {
          const restored = storedRecord(runIdIn(p.output()))?.shards?.[3]?.attempts?.[0]?.restored_step;
          return typeof restored === 'number' && shardCommits(sb, runIdIn(p.output()), 3).some((c) => c.step > restored);
        },
        180_000,
        'the rerun of shard 3 restoring, then committing a newer step',
      );
      // Its retries used up, the attempt ends preempted and the next one is a new job.
      await standin.preempt(job!, 3);
      let code: number | null | undefined;
      p.on('close', (c) => (code = c));
      await waitFor(() => code !== undefined, 300_000, () => `make train to end after the second preemption; the jobs: ${JSON.stringify(standin.history.slice(-12))}; its output: ${p.output().slice(-4000)}`);
      expect(code, p.output()).toBe(0);
    } finally {
      if (p.exitCode === null) process.kill(-p.pid!, 'SIGKILL');
    }
    const id = runIdIn(p.output())!;
    const run = JSON.parse(stored(`runs/${id}/run.json`).toString());
    const [first, second] = run.shards[3].attempts;
    expect(run.shards[3].attempts.map((a: { state: string }) => a.state)).toEqual(['preempted', 'succeeded']);
    // The rerun went on from the first run's checkpoint, within the same attempt and job.
    expect(first.restored_step).toBeGreaterThanOrEqual(firstStep);
    expect(standin.history.filter((e) => e.job === job && e.task === 3 && e.exitCode === 50001).map((e) => e.attempt)).toEqual([0, 1]);
    // The retry is a job of its own, of one task, resumed from the rerun's newest checkpoint.
    expect(second.handle.job).not.toBe(first.handle.job);
    expect(second.restored_step).toBeGreaterThan(firstStep);
    // The ledger names every step of shard 3 once, and exactly the steps its store holds.
    const entries = readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.run_id === id && e.shard === 3);
    const commits = entries.filter((e) => e.type === 'ckpt.committed').map((e) => e.step);
    expect(new Set(commits).size, JSON.stringify(commits)).toBe(commits.length);
    const prunes = new Set(entries.filter((e) => e.type === 'ckpt.pruned').map((e) => e.step));
    const live = commits.filter((s: number) => !prunes.has(s)).sort((a: number, b: number) => a - b);
    const steps = readdirSync(path.dirname(s3rverObjectPath(s3, `${PREFIX}/runs/${id}/shards/3/ckpt/x`)))
      .filter((d) => existsSync(s3rverObjectPath(s3, `${PREFIX}/runs/${id}/shards/3/ckpt/${d}/manifest.json`)))
      .map(Number)
      .sort((a, b) => a - b);
    expect(live).toEqual(steps);
    const verify = await make(['verify']);
    expect(verify.code, verify.out).toBe(0);
    expect(stored(`runs/${id}/outputs/merged.jsonl`).toString()).toBe(reference);
  }, 600_000);

  it('make status shows each unit; make stop has each task checkpoint and stop, then deletes the job', async () => {
    const before = jobsCreated().length;
    const p = sb.spawnMake(['train', 'experiment=knn/batch-stop', 'backend=gcp-batch'], env);
    try {
      await waitFor(() => jobsCreated().length > before && shardCommits(sb, runIdIn(p.output()), 0).length > 0, 180_000, 'the job running');
      const id = runIdIn(p.output())!;
      const [job] = jobsCreated().slice(before);
      const status = await make(['status', `run=${id}`]);
      expect(status.code, status.out).toBe(0);
      expect(status.stdout).toMatch(new RegExp(`run ${id} on gcp-batch: running, \\d of 8 shards done`));
      for (let i = 0; i < 8; i++) expect(status.stdout).toMatch(new RegExp(`^ *${i} +gcp-batch +(running|pending|succeeded) `, 'm'));

      const stop = await make(['stop', `run=${id}`]);
      expect(stop.code, stop.out).toBe(0);
      await standin.waitFor((e) => e.job === job && e.state === 'DELETED', { what: 'the job deleted' });
      await new Promise((r) => (p.exitCode === null ? p.on('close', r) : r(null)));
      const run = JSON.parse(stored(`runs/${id}/run.json`).toString());
      const last: { state: string; reason: string | null }[] = run.shards.map((s: { attempts: object[] }) => s.attempts.at(-1)!);
      expect(last.filter((a) => a.state !== 'succeeded').every((a) => a.state === 'cancelled')).toBe(true);
      const stopped = [...last.keys()].filter((i) => last[i]!.state === 'cancelled');
      expect(stopped.length).toBeGreaterThan(0);
      for (const i of stopped) {
        // Its runner got the stop request, checkpointed and stopped (exit 130) before the job went.
        expect(last[i]!.reason).toBe('stopped by the user');
        expect(JSON.parse(stored(`runs/${id}/shards/${i}/attempts/1/status.json`).toString())).toMatchObject({ state: 'cancelled' });
        expect(standin.history.some((e) => e.job === job && e.task === i && e.exitCode === 130)).toBe(true);
      }
    } finally {
      if (p.exitCode === null) process.kill(-p.pid!, 'SIGKILL');
    }
  }, 600_000);
});
