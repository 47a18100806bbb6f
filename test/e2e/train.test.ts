// `make train` and friends, end to end, in a throwaway copy of the repository.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, experimentPids, holdExperiment, holdMidRun, waitFor, type Sandbox } from '../helpers/sandbox.js';
import type { AttemptRecord, RunRecord } from '../../scripts/lib/runs/run-record.js';

/** run.json as stored: a run of one unit keeps its attempts at the top. */
type RunJson = Omit<RunRecord, 'units' | 'sharded'> & { attempts: AttemptRecord[] };

let sb: Sandbox;
const FAST = 'experiment=penguins/fast';

beforeAll(() => {
  sb = createSandbox();
});
afterAll(() => sb?.cleanup());

const runsDir = () => path.join(sb.dir, '.switchyard/store/runs');
const runIds = () => (existsSync(runsDir()) ? readdirSync(runsDir()).sort() : []);
const record = (id: string) => JSON.parse(readFileSync(path.join(runsDir(), id, 'run.json'), 'utf8')) as RunJson;
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const metricsOf = (id: string, attempt: number) =>
  readFileSync(path.join(runsDir(), id, 'attempts', String(attempt), 'metrics.jsonl'), 'utf8').trim().split('\n');
const committedSteps = (id: string) =>
  existsSync(path.join(runsDir(), id, 'ckpt'))
    ? readdirSync(path.join(runsDir(), id, 'ckpt')).filter((s) => existsSync(path.join(runsDir(), id, 'ckpt', s, 'manifest.json'))).map(Number)
    : [];

function train(args: string[] = [FAST]) {
  const r = sb.make(['train', ...args]);
  return { ...r, all: r.stdout + r.stderr, id: runIdIn(r.stdout + r.stderr) };
}

describe('make train on the laptop', () => {
  let first: string;

  it('trains penguins and leaves a pinned, ledgered, resumable run', () => {
    const r = train();
    expect(r.code, r.all).toBe(0);
    first = r.id!;
    const run = record(first);
    expect(Object.keys(run.pins).sort()).toEqual(['code', 'config', 'data', 'digest', 'env', 'seed']);
    expect(run.pins.code.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(run.pins.code.dirty_sha256).toBeNull();
    expect(run.pins.data).toMatchObject({ files: 2 });
    expect(run.pins.env.python).toMatch(/^3\./);
    expect(run.pins.seed).toBe(42);
    expect(first.endsWith(run.pins.digest.slice(-8))).toBe(true);
    expect(run.attempts).toMatchObject([{ n: 1, backend: 'local', state: 'succeeded', exit_code: 0 }]);
    expect(metricsOf(first, 1).length).toBeGreaterThan(5);
    expect(committedSteps(first)).toContain(run.attempts[0]!.last_step);
    expect(readFileSync(path.join(runsDir(), first, 'replicate.sh'), 'utf8')).toContain(`make replay run=${first}`);
    expect(existsSync(path.join(runsDir(), first, 'outputs/model.json'))).toBe(true);
    expect(sb.make(['verify']).code).toBe(0);
  });

  it('the same command again is a cache hit with the same pin digest', () => {
    const r = train();
    expect(r.code).toBe(0);
    expect(r.all).toContain(`run ${first} already finished with these pins`);
    expect(runIds()).toHaveLength(1);
  });

  it('one byte changed in a data file makes a new run id', () => {
    const file = path.join(sb.dir, 'competitions/penguins/data/test.csv');
    const original = readFileSync(file);
    const changed = Buffer.from(original);
    changed[changed.length - 2] = changed[changed.length - 2]! ^ 1;
    writeFileSync(file, changed);
    try {
      const r = train();
      expect(r.code, r.all).toBe(0);
      expect(r.id).not.toBe(first);
      expect(record(r.id!).pins.data.root).not.toBe(record(first).pins.data.root);
      // The data lives in the repository here, so the code pin sees the change too.
      expect(record(r.id!).pins.code.commit).toBe(record(first).pins.code.commit);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('an uncommitted source change makes a new run id and the diff is saved with it', () => {
    const file = path.join(sb.dir, 'competitions/penguins/predict.py');
    const original = readFileSync(file, 'utf8');
    appendFileSync(file, '# tweak\n');
    try {
      const r = train();
      expect(r.code, r.all).toBe(0);
      expect(r.id).not.toBe(first);
      const run = record(r.id!);
      expect(run.pins.code.commit).toBe(record(first).pins.code.commit);
      expect(run.pins.code.dirty_sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(readFileSync(path.join(runsDir(), r.id!, 'source.diff'), 'utf8')).toContain('+# tweak');
    } finally {
      writeFileSync(file, original);
    }
    expect(train().all).toContain(`run ${first} already finished`);
  });

  it('after SIGKILL, make train resumes from the last committed step and ends as an uninterrupted run would', async () => {
    const hold = await holdExperiment(sb);
    const p = sb.spawnMake(['train', FAST, 'seed=7']);
    const { runId: id } = await holdMidRun(sb, hold, 2);
    process.kill(-p.pid!, 'SIGKILL');
    await new Promise((r) => p.on('close', r));
    await waitFor(() => experimentPids(id).length === 0, 30_000, 'the experiment to be killed with its runner');
    // make status run= says what the list of runs says: lost, not "stopped" with its attempt "running".
    const shown = sb.make(['status', `run=${id}`]);
    expect(shown.stdout).toContain(`run ${id} on local: lost, 0 of 1 units done`);
    expect(shown.stdout).toMatch(/^1 +local +- +lost /m);
    expect(sb.make(['status']).stdout).toMatch(new RegExp(`^${id} +penguins/fast +lost `, 'm'));
    // A half-written step in the store must never be restored.
    mkdirSync(path.join(runsDir(), id, 'ckpt', '999999'));
    writeFileSync(path.join(runsDir(), id, 'ckpt', '999999', 'state.json'), '{"half":');
    const beforeResume = Math.max(...committedSteps(id));

    const resumed = train([FAST, 'seed=7']);
    expect(resumed.code, resumed.all).toBe(0);
    expect(resumed.id).toBe(id);
    expect(resumed.all).toContain('attempt 1 ended lost');
    expect(resumed.all).toContain('skipping stored step 999999: no manifest (partial upload)');
    // A step the runner had committed in its work folder but not yet copied to the store when it
    // was killed is salvaged by the resume, which then goes on from it.
    const salvaged = [...resumed.all.matchAll(/uploaded step (\d+), committed here by an earlier attempt/g)].map((m) => Number(m[1]));
    for (const step of salvaged) expect(step).toBeGreaterThan(beforeResume);
    const from = Math.max(beforeResume, ...salvaged);
    expect(resumed.all).toContain(`resuming from committed checkpoint step ${from}`);
    const run = record(id);
    expect(run.attempts.map((a) => a.state)).toEqual(['lost', 'succeeded']);
    expect(run.attempts[1]!.restored_step).toBe(from);

    const again = train([FAST, 'seed=7', 'again=1']);
    expect(again.code, again.all).toBe(0);
    expect(again.id).not.toBe(id);
    expect(record(again.id!).pins.digest).toBe(run.pins.digest);
    expect(metricsOf(id, 2).at(-1)).toBe(metricsOf(again.id!, 1).at(-1));
    const model = (rid: string) => readFileSync(path.join(runsDir(), rid, 'outputs/model.json'));
    expect(model(id).equals(model(again.id!))).toBe(true);

    expect(sb.make(['predict', `run=${id}`]).code).toBe(0);
    expect(sb.make(['predict', `run=${again.id}`]).code).toBe(0);
    const submission = (rid: string) => readFileSync(path.join(runsDir(), rid, 'outputs/submission.csv'));
    expect(submission(id).equals(submission(again.id!))).toBe(true);
    expect(sb.make(['verify']).code).toBe(0);
  });
});
