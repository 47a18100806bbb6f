// Nothing lost, nothing run twice: two `make train` of one experiment at the same moment, a run
// whose ledger entry cannot be written, an internal error in the verb mid-attempt, and a
// reader that closes the verb's stdout.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../scripts/lib/ledger/ledger.js';
import type { AttemptRecord, RunRecord } from '../../scripts/lib/runs/run-record.js';

/** run.json as stored: a run of one unit keeps its attempts at the top. */
type RunJson = Omit<RunRecord, 'units' | 'sharded'> & { attempts: AttemptRecord[] };
import { createSandbox, experimentPids, holdExperiment, holdMidRun, waitFor, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
let gates: string; // the hold experiment waits for go-<seed> here and marks each start
const ownLines = (stderr: string) => stderr.split('\n').filter((l) => l && !/^make(\[\d+\])?: \*\*\*/.test(l));

beforeAll(() => {
  sb = createSandbox();
  gates = mkdtempSync(path.join(os.tmpdir(), 'switchyard-gates-'));
  // Marks that it started, then runs until the test lets it finish: the race is decided while it runs.
  writeFileSync(
    path.join(sb.dir, 'competitions/penguins/experiments/hold.yaml'),
    [
      'train:',
      `  command: 'touch "$GATES/started-$SWITCHYARD_SEED-$$"; until [ -e "$GATES/go-$SWITCHYARD_SEED" ]; do sleep 0.05; done'`,
      '  env:',
      `    GATES: ${gates}`,
      '',
    ].join('\n'),
  );
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'hold experiment']);
  expect(sb.make(['build']).code).toBe(0); // once, not by two racing makes
});
afterAll(() => {
  sb?.cleanup();
  if (gates) rmSync(gates, { recursive: true, force: true });
});

const runsDir = () => path.join(sb.dir, '.switchyard/store/runs');
const runIds = () => (existsSync(runsDir()) ? readdirSync(runsDir()).sort() : []);
const record = (id: string) => JSON.parse(readFileSync(path.join(runsDir(), id, 'run.json'), 'utf8')) as RunJson;
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const ledger = () =>
  readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LedgerEntry);
const entries = (type: string, runId: string) => ledger().filter((e) => e.type === type && e.run_id === runId);
const started = (seed: number) => readdirSync(gates).filter((f) => f.startsWith(`started-${seed}-`));

/** One trial of the race: exactly one of `both` runs attempt 1, the other is refused naming it. */
async function raceTrial(seed: number, both: ReturnType<Sandbox['spawnMake']>[]): Promise<void> {
  const closed = both.map((p) => new Promise<number | null>((r) => p.on('close', r)));
  // Settled once one of them is done, or once both experiments run (two attempts 1).
  await waitFor(() => both.some((p) => p.exitCode !== null) || started(seed).length > 1, 60_000, `seed ${seed}: one make train to be refused`);
  expect(started(seed).length, `seed ${seed}: experiments started`).toBeLessThanOrEqual(1);
  const loser = both.find((p) => p.exitCode !== null)!;
  const winner = both.find((p) => p !== loser)!;
  await closed[both.indexOf(loser)];
  await waitFor(() => !!runIdIn(winner.output()) && started(seed).length === 1, 60_000, `seed ${seed}: the winner's experiment`);
  writeFileSync(path.join(gates, `go-${seed}`), '');
  expect(await closed[both.indexOf(winner)], winner.output()).toBe(0);

  const id = runIdIn(winner.output())!;
  expect(loser.exitCode).not.toBe(0);
  expect(loser.output()).toContain(`run ${id} is already running in another shell (pid `);
  expect(loser.output()).toContain(`follow it with make logs run=${id} follow=1`);
  expect(started(seed)).toHaveLength(1);
  const run = record(id);
  expect(run.attempts).toMatchObject([{ n: 1, state: 'succeeded' }]);
  expect(ledger().filter((e) => e.type === 'run.created' && e.digest === run.pins.digest)).toHaveLength(1);
  expect(entries('attempt.started', id)).toHaveLength(1);
}

describe('one run per pin digest', () => {
  it('of two make train started together, one runs attempt 1 and the other names the run and how to follow it (10 trials)', async () => {
    for (let trial = 0; trial < 10; trial++) {
      const seed = 100 + trial;
      const both = [0, 1].map(() => sb.spawnMake(['train', 'experiment=penguins/hold', `seed=${seed}`]));
      try {
        await raceTrial(seed, both);
      } finally {
        writeFileSync(path.join(gates, `go-${seed}`), '');
        for (const p of both) if (p.exitCode === null && p.signalCode === null) process.kill(-p.pid!, 'SIGKILL');
      }
    }
    expect(sb.make(['verify']).code).toBe(0);
  }, 600_000);
});

describe('a run exists whole or not at all', () => {
  it('a run whose ledger entry cannot be written is not left behind', () => {
    const file = path.join(sb.dir, '.switchyard/ledger.jsonl');
    expect(sb.make(['train', 'experiment=penguins/fast', 'seed=400']).code).toBe(0); // a ledger to set aside
    const before = { runs: runIds(), status: sb.make(['status']).stdout };
    renameSync(file, `${file}.aside`);
    mkdirSync(file); // a directory where the ledger should be: every append fails, even as root
    try {
      const r = sb.make(['train', 'experiment=penguins/fast', 'seed=401']);
      expect(r.code).not.toBe(0);
      expect(ownLines(r.stderr)[0]).toMatch(/^switchyard: .*EISDIR/);
      expect(runIds()).toEqual(before.runs);
    } finally {
      rmSync(file, { recursive: true });
      renameSync(`${file}.aside`, file);
    }
    expect(sb.make(['status']).stdout).toBe(before.status);
    expect(readdirSync(path.join(sb.dir, '.switchyard/launchers')).filter((f) => f.endsWith('.pid'))).toEqual([]);
    // With the ledger back, the same command creates the run whole, and it is the only one with its pins.
    const again = sb.make(['train', 'experiment=penguins/fast', 'seed=401']);
    expect(again.code, again.stderr).toBe(0);
    const id = runIdIn(again.stdout + again.stderr)!;
    const { digest } = record(id).pins;
    expect(readdirSync(path.join(sb.dir, '.switchyard/store/index/digests', digest))).toEqual([id]);
    expect(ledger().filter((e) => e.type === 'run.created' && e.digest === digest)).toHaveLength(1);
    expect(sb.make(['verify']).code).toBe(0);
  });
});

describe('the verb never leaves its experiment running', () => {
  it('an internal error mid-attempt checkpoints and stops the experiment and records its end; make train resumes it', async () => {
    // Held from its start until its first step is in the ledger, the fault's moment: however
    // quick the machine, the experiment is still running when the verb fails.
    const hold = await holdExperiment(sb);
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'seed=501'], { SWITCHYARD_TEST_FAULT: 'after-checkpoint' });
    const { pid } = await holdMidRun(sb, hold, 1);
    process.kill(-pid, 'SIGCONT');
    const code = await new Promise((r) => p.on('close', r));
    const out = p.output();
    expect(code, out).not.toBe(0);
    expect(out).toContain('switchyard: internal error: injected fault at after-checkpoint');
    const id = runIdIn(out)!;
    expect(experimentPids(id)).toEqual([]); // its process group is gone with the verb
    const [attempt] = record(id).attempts;
    expect(attempt).toMatchObject({ n: 1, state: 'cancelled', reason: expect.stringContaining('stopped after an error in switchyard: injected fault') });
    expect(attempt!.ended_at).not.toBeNull();
    expect(attempt!.last_step).toBeGreaterThan(0);
    expect(entries('attempt.ended', id)).toMatchObject([{ attempt: 1, state: 'cancelled', last_step: attempt!.last_step }]);

    const resumed = sb.make(['train', 'experiment=penguins/fast', 'seed=501']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout + resumed.stderr).toContain(`resuming from committed checkpoint step ${attempt!.last_step}`);
    expect(record(id).attempts.map((a) => a.state)).toEqual(['cancelled', 'succeeded']);
    expect(sb.make(['verify']).code).toBe(0);
  });

  it('make train | head -1: the closed stdout does not crash the orchestrator; the run completes and is recorded', () => {
    const env = { ...process.env };
    for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL']) delete env[k];
    const r = spawnSync('bash', ['-c', 'make -s train experiment=penguins/fast seed=601 | head -1; exit "${PIPESTATUS[0]}"'], { cwd: sb.dir, env, timeout: 120_000 });
    const [stdout, stderr] = [r.stdout.toString(), r.stderr.toString()];
    expect(r.status, stderr).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/EPIPE|internal error/);
    const id = runIdIn(stderr)!;
    expect(record(id).attempts).toMatchObject([{ n: 1, state: 'succeeded' }]);
    expect(entries('attempt.ended', id)).toMatchObject([{ attempt: 1, state: 'succeeded' }]);
  });
});
