// SlurmBackend.findSubmitted against a real single-node cluster (test/helpers/slurm.ts), its
// login node this machine (LocalLogin): a backend that did not submit finds the jobs another
// one's submitMany started, by the job id kept for them or, where none was kept (the submitter
// died after sbatch), by the job's name; attempts never sent are not found; nothing is
// submitted or written; and a controller that does not answer is a one-line error, never "not
// found". Every wait is for an event (sbatch and squeue answering), never a fixed sleep.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Handle, Submission } from '../../scripts/lib/backends/backend.js';
import { SlurmBackend } from '../../scripts/lib/backends/slurm.js';
import { ClusterSchema } from '../../scripts/lib/config/cluster-config.js';
import { LocalLogin } from '../../scripts/lib/slurm/login-node.js';
import { SLURM_FIND_SCRIPT } from '../../scripts/lib/slurm/scripts.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { startSlurm, type TestSlurm } from '../helpers/slurm.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { waitFor } from '../helpers/sandbox.js';

let slurm: TestSlurm;
let dir: string;
const conf = process.env.SLURM_CONF;

beforeAll(async () => {
  slurm = await startSlurm();
  process.env.SLURM_CONF = slurm.conf; // LocalLogin's sh, sbatch and squeue ask this cluster
  dir = mkdtempSync('/var/tmp/sy-find-');
  // The runner the jobs exec: it holds, so each job runs until the cluster is cleaned up.
  writeFileSync(path.join(dir, 'hold.mjs'), 'setInterval(() => {}, 1 << 30);\n');
}, 120_000);

afterAll(async () => {
  await slurm?.cleanup();
  if (conf === undefined) delete process.env.SLURM_CONF;
  else process.env.SLURM_CONF = conf;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A backend of its own, as a later process (`make stop`) opens one; `login` to count its calls. */
function open(): { backend: SlurmBackend; login: LocalLogin } {
  const login = new LocalLogin({ root: dir, stateDir: path.join(dir, 'state'), runnerBundle: path.join(dir, 'hold.mjs'), workDir: (u) => path.join(dir, 'work', u) });
  return { backend: new SlurmBackend({ cluster: 'test', entry: ClusterSchema.parse({}), login }), login };
}

/** A run's units (the test cluster's MaxArraySize is 3: four make an array of three and a job). */
function group(run: string, count: number, attempt = 1): Submission[] {
  return Array.from({ length: count }, (_, i): Submission => ({
    spec: testAttemptSpec({ run_id: run, unit_id: count > 1 ? `${run}/shards/${i}` : run, shard_index: i, shard_count: count, attempt, command: 'true', store: 'file://x' }),
    slot: 'test',
  }));
}

/** Handles without submitted_at: when it was asked, not what was started. */
const started = (handles: readonly (Handle | Error | null)[]) =>
  handles.map((h) => {
    if (!h || h instanceof Error) return h;
    const { submitted_at: _, ...rest } = h;
    return rest;
  });

/** Every job the cluster knows, in any state: an array once, however many of its tasks have started. */
const jobs = async () => [...new Set((await slurm.client(['squeue', '-h', '--states=all', '-o', '%F'])).trim().split('\n'))].sort();

/** The job id files the submits kept for a run. */
const keptIds = (run: string) => readdirSync(path.join(dir, 'state/slurm', run)).filter((f) => f.endsWith('.jobid'));

/** As if each submitter had died between sbatch and keeping the job's id. */
function forgetIds(...runs: string[]): void {
  for (const run of runs) for (const f of keptIds(run)) rmSync(path.join(dir, 'state/slurm', run, f));
}

/** Resolves once `ok` holds, asking every 200 ms (squeue has no way to wait for a state); a timeout says what squeue saw. */
const until = (ok: () => Promise<boolean>, what: string) =>
  waitFor(ok, 60_000, async () => `${what}: ${await slurm.client(['squeue', '-h', '--states=all', '-o', '%i %T %r'])}`, 200);

/** Counts the login's find calls from now on. */
function findCalls(login: LocalLogin): () => number {
  const sh = vi.spyOn(login, 'sh');
  return () => sh.mock.calls.filter(([script]) => script === SLURM_FIND_SCRIPT).length;
}

describe('SlurmBackend.findSubmitted', () => {
  const one = group('findone', 1);
  const four = group('findfour', 4);
  let submitted: { one: (Handle | Error)[]; four: (Handle | Error)[] };

  beforeAll(async () => {
    const { backend } = open();
    submitted = { one: await backend.submitMany(one), four: await backend.submitMany(four) };
    for (const h of [...submitted.one, ...submitted.four]) if (h instanceof Error) throw h;
    expect(submitted.four.map((h) => (h as Handle).job)).toEqual([
      ...[0, 1, 2].map((i) => expect.stringMatching(new RegExp(`^\\d+_${i}$`))),
      expect.stringMatching(/^\d+$/),
    ]);
    // Started, every task: a started task of an array has a job id of its own, not the array's.
    await until(async () => {
      const states = (await slurm.client(['squeue', '-h', '--states=all', '-o', '%T'])).trim().split('\n');
      return states.length === 5 && states.every((s) => s === 'RUNNING');
    }, 'the five jobs (one, an array of three, one) to run');
  }, 120_000);

  it('finds what another backend submitted, one job and job arrays, as submitMany answered; one call, nothing submitted', async () => {
    const before = await jobs();
    const { backend, login } = open();
    const calls = findCalls(login);
    expect(started(await backend.findSubmitted(one))).toEqual(started(submitted.one));
    expect(started(await backend.findSubmitted(four))).toEqual(started(submitted.four));
    expect(calls()).toBe(2); // one for each group, however many arrays it makes
    expect(await jobs()).toEqual(before);
  });

  it('attempts never submitted are not found, and nothing is submitted for them', async () => {
    const before = await jobs();
    const { backend } = open();
    expect(await backend.findSubmitted(group('findnone', 1))).toEqual([null]);
    expect(await backend.findSubmitted(group('findnone', 4))).toEqual([null, null, null, null]);
    // the same units, a later attempt: another submission
    expect(await backend.findSubmitted(group('findone', 1, 2))).toEqual([null]);
    expect(await backend.findSubmitted(group('findfour', 4, 2))).toEqual([null, null, null, null]);
    expect(await backend.findSubmitted([])).toEqual([]);
    expect(await jobs()).toEqual(before);
    expect(readdirSync(path.join(dir, 'state/slurm')).sort()).toEqual(['findfour', 'findone']);
  });

  it('no job id kept (the submitter died after sbatch): found by the job name, and still nothing written', async () => {
    forgetIds('findone', 'findfour');
    const before = await jobs();
    const { backend, login } = open();
    const calls = findCalls(login);
    expect(started(await backend.findSubmitted(one))).toEqual(started(submitted.one));
    expect(started(await backend.findSubmitted(four))).toEqual(started(submitted.four));
    expect(calls()).toBe(2);
    expect(await jobs()).toEqual(before);
    expect([...keptIds('findone'), ...keptIds('findfour')]).toEqual([]);
  });

  it('a submit again without the kept id finds the same jobs by name, as the search does (the array\'s id, not a started task\'s)', async () => {
    forgetIds('findone', 'findfour');
    const before = await jobs();
    const { backend } = open();
    expect(started(await backend.submitMany(one))).toEqual(started(submitted.one));
    expect(started(await backend.submitMany(four))).toEqual(started(submitted.four));
    expect(await jobs()).toEqual(before);
  });

  it('a run keeps the array size its first submit recorded, whatever the cluster says at a later one', async () => {
    expect(readFileSync(path.join(dir, 'state/slurm/findfour/array-size'), 'utf8')).toBe('3\n'); // recorded by the first submit
    mkdirSync(path.join(dir, 'state/slurm/findkept'), { recursive: true });
    writeFileSync(path.join(dir, 'state/slurm/findkept/array-size'), '2\n'); // as if MaxArraySize was 2 then
    const kept = group('findkept', 4);
    const handles = await open().backend.submitMany(kept);
    expect(handles.map((h) => (h instanceof Error ? h.message : (h as unknown as { job: string }).job.replace(/^\d+/, 'J')))).toEqual(['J_0', 'J_1', 'J_0', 'J_1']);
    expect(started(await open().backend.findSubmitted(kept))).toEqual(started(handles));
  }, 120_000);

  it('the controller down: a one-line error naming the cluster, not "not found"', async () => {
    const { backend: asked } = open();
    await asked.findSubmitted(four); // MaxArraySize asked while the controller answers
    forgetIds('findone', 'findfour'); // a kept id is answered without asking SLURM
    await slurm.stopController();
    const single = await open().backend.findSubmitted(one).catch((err: Error) => err);
    expect(single).toBeInstanceOf(UserError);
    expect((single as Error).message).toMatch(/^slurm test: squeue did not answer \(exit 1: slurm_load_jobs error: Unable to contact slurm controller.*\); the jobs these attempts may have started cannot be looked for$/);
    expect((single as Error).message).not.toContain('\n');
    const array = await asked.findSubmitted(four).catch((err: Error) => err);
    expect(array).toBeInstanceOf(UserError);
    expect((array as Error).message).toMatch(/^slurm test: squeue did not answer \(exit 1: [^\n]*\)[^\n]*$/);
    // A fresh backend cannot even tell how the units of a run never submitted split into arrays.
    const unsplit = await open().backend.findSubmitted(group('findnone', 4)).catch((err: Error) => err);
    expect((unsplit as Error).message).toMatch(/^slurm test: `scontrol show config` did not answer \([^\n]*\); several units need the cluster's MaxArraySize to be cut into job arrays, so they cannot be looked for$/);
  }, 120_000);
});
