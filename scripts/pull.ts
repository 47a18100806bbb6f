// make pull run=<id> | host=<name> [dest=<dir>]: brings a run's outputs, logs and metrics from the store to
// this machine (default outputs/<run_id>/), verifying each file against its recorded SHA-256.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { backendForHandle } from './lib/backends/index.js';
import { openProject, type Project } from './lib/project.js';
import { ATTEMPT_FILES } from './lib/runner/attempt-spec.js';
import { runKeys, unitKey, type AttemptRecord, type RunRecord } from './lib/runs/run-record.js';
import { loadRun } from './lib/runs/run-store.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';
import { plural } from './lib/ui/plural.js';

/** One run's outputs, logs, metrics and record into `dest`, each checked against the store. */
async function pullRun(project: Project, run: RunRecord, dest: string): Promise<string> {
  // A run that ran elsewhere comes home to the store first (a no-op when the worker wrote to it).
  for (const last of run.units.map((u) => u.attempts.at(-1))) {
    if (last?.handle && last.backend !== 'local') await (await backendForHandle(project, last.handle)).pull(last.handle);
  }
  const { store } = project;
  const manifest = await store.getBytes(runKeys.outputsManifest(run.run_id));
  const outputs = manifest ? (JSON.parse(manifest.toString('utf8')) as { files: { path: string; sha256: string }[] }).files : [];
  let count = 0;
  for (const f of outputs) {
    const got = await store.get(runKeys.output(run.run_id, f.path), path.join(dest, 'outputs', f.path));
    if (got.sha256 !== f.sha256) throw new UserError(`pull: ${store.locate(runKeys.output(run.run_id, f.path))} does not match the outputs manifest`);
    count++;
  }
  // Each attempt's logs, metrics and status: the run's own, or each shard's of a fleet search.
  const units = run.sharded
    ? run.units.map((s) => ({ unit: unitKey(run, s.index), attempts: s.attempts.map((a) => a.n), dir: path.join(dest, 'shards', String(s.index)) }))
    : [{ unit: run.run_id, attempts: [...(run.units[0]?.attempts ?? []).map((a) => a.n), 'predict' as const], dir: dest }];
  for (const { unit, attempts, dir } of units) {
    for (const attempt of attempts) {
      for (const name of ATTEMPT_FILES) {
        const key = runKeys.attemptFile(unit, attempt, name);
        if (!(await store.stat(key))) continue;
        mkdirSync(path.join(dir, 'attempts', String(attempt)), { recursive: true });
        await store.get(key, path.join(dir, 'attempts', String(attempt), name));
        count++;
      }
    }
  }
  await store.get(runKeys.record(run.run_id), path.join(dest, 'run.json'));
  const where = path.relative(process.cwd(), dest) || '.';
  return `pulled ${plural(count + 1, 'file')} of ${run.run_id} to ${where}/${manifest ? '' : ' (the run has no outputs yet)'}`;
}

await runMain(async () => {
  const vars = readVars('pull', { run: z.string().optional(), host: z.string().optional(), dest: z.string().optional() });
  const project = await openProject();
  if (vars.run) {
    const run = await loadRun(project, vars.run);
    console.log(await pullRun(project, run, path.resolve(vars.dest ?? path.join(project.root, 'outputs', run.run_id))));
    return 0;
  }
  if (!vars.host) throw new UserError('make pull: give run=<id>, or host=<name> for every run that ran there');
  const ranThere = (a: AttemptRecord) => a.handle?.host === vars.host;
  const runs = project.db.list().filter((r) => r.units.some((u) => u.attempts.some(ranThere)));
  if (!runs.length) throw new UserError(`make pull: no run has run on host ${vars.host}`);
  for (const run of runs) console.log(await pullRun(project, run, path.join(vars.dest ? path.resolve(vars.dest) : path.join(project.root, 'outputs'), run.run_id)));
  return 0;
});
