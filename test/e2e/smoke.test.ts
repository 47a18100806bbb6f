// `make e2e-smoke`: the whole life of a new competition, as a user would live it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox, experimentPids, holdExperiment, holdMidRun, waitFor, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
beforeAll(() => {
  sb = createSandbox();
});
afterAll(() => sb?.cleanup());

it('scaffold, train, SIGKILL, resume, predict, dry-run submit, verify', async () => {
  const made = sb.make(['competition-new', 'competition=smoke', 'name=Smoke test']);
  expect(made.code, made.stderr).toBe(0);
  expect(JSON.parse(readFileSync(path.join(sb.dir, 'competitions/smoke/challenge.json'), 'utf8')).title).toBe('Smoke test');
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'scaffold smoke']);

  // The template's run lasts ~2 s: held from its start and let on a slice at a time until it
  // has committed a step, it is still mid-run when the SIGKILL comes.
  const hold = await holdExperiment(sb);
  const p = sb.spawnMake(['train', 'experiment=smoke']);
  const { runId: id } = await holdMidRun(sb, hold, 1);
  process.kill(-p.pid!, 'SIGKILL');
  await new Promise((r) => p.on('close', r));
  await waitFor(() => experimentPids(id).length === 0, 30_000, 'the experiment to be killed with its runner');

  const resumed = sb.make(['train', 'experiment=smoke']);
  expect(resumed.code, resumed.stderr).toBe(0);
  const out = resumed.stdout + resumed.stderr;
  expect(out).toMatch(/resuming from committed checkpoint step \d+/);
  expect(out).toMatch(/resumed from step \d+/);
  expect(out).toContain(`run ${id} succeeded`);

  const predicted = sb.make(['predict', 'experiment=smoke']);
  expect(predicted.code, predicted.stderr).toBe(0);
  const submission = path.join(sb.dir, '.switchyard/store/runs', id, 'outputs/submission.csv');
  expect(readFileSync(submission, 'utf8').split('\n')[0]).toBe('id,y');

  const submitted = sb.make(['submit', 'experiment=smoke', 'dry=1']);
  expect(submitted.code, submitted.stderr).toBe(0);
  expect(submitted.stdout).toContain('dry run: nothing was uploaded');

  const verified = sb.make(['verify']);
  expect(verified.code, verified.stderr).toBe(0);
  expect(verified.stdout).toMatch(/ledger ok: \d+ entries/);
});
