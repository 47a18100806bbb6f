// `make e2e-smoke`: the whole life of a new competition, as a user would live it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox, experimentPids, waitFor, type Sandbox } from '../helpers/sandbox.js';

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

  const p = sb.spawnMake(['train', 'experiment=smoke']);
  const id = () => /run (smoke-default-\S+)/.exec(p.output())?.[1];
  const ckpt = () => path.join(sb.dir, '.switchyard/store/runs', id()!, 'ckpt');
  await waitFor(() => !!id() && experimentPids(id()!).length > 0, 60_000, 'the experiment to start');
  await freezeAfterCheckpoints(id()!, ckpt(), 1);
  process.kill(-p.pid!, 'SIGKILL');
  await new Promise((r) => p.on('close', r));
  await waitFor(() => experimentPids(id()!).length === 0, 30_000, 'the experiment to be killed with its runner');

  const resumed = sb.make(['train', 'experiment=smoke']);
  expect(resumed.code, resumed.stderr).toBe(0);
  const out = resumed.stdout + resumed.stderr;
  expect(out).toMatch(/resuming from committed checkpoint step \d+/);
  expect(out).toMatch(/resumed from step \d+/);
  expect(out).toContain(`run ${id()} succeeded`);

  const predicted = sb.make(['predict', 'experiment=smoke']);
  expect(predicted.code, predicted.stderr).toBe(0);
  const submission = path.join(sb.dir, '.switchyard/store/runs', id()!, 'outputs/submission.csv');
  expect(readFileSync(submission, 'utf8').split('\n')[0]).toBe('id,y');

  const submitted = sb.make(['submit', 'experiment=smoke', 'dry=1']);
  expect(submitted.code, submitted.stderr).toBe(0);
  expect(submitted.stdout).toContain('dry run: nothing was uploaded');

  const verified = sb.make(['verify']);
  expect(verified.code, verified.stderr).toBe(0);
  expect(verified.stdout).toMatch(/ledger ok: \d+ entries/);
});

/**
 * Stops (SIGSTOP) the run's experiment once `count` checkpoints are committed (their manifest,
 * written last, is in the store). The template's run lasts ~2 s and saves every second: its one
 * commit before the last comes ~1 s before its end, so the check, made while it is stopped, sees
 * it in time, and the SIGKILL that follows lands mid-run. (Waiting for two step folders raced the
 * end: the second save came within ~0.1 s of it.)
 */
async function freezeAfterCheckpoints(runId: string, ckptDir: string, count: number): Promise<void> {
  const signal = (pids: number[], sig: NodeJS.Signals) => pids.filter((pid) => {
    try {
      process.kill(pid, sig);
      return true;
    } catch {
      return false; // it ended meanwhile
    }
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const stopped = signal(experimentPids(runId), 'SIGSTOP');
    if (!stopped.length) throw new Error(`the experiment of ${runId} ended before ${count} checkpoints were committed`);
    const committed = existsSync(ckptDir) ? readdirSync(ckptDir).filter((step) => existsSync(path.join(ckptDir, step, 'manifest.json'))) : [];
    if (committed.length >= count) return;
    signal(stopped, 'SIGCONT');
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} checkpoints of ${runId}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
