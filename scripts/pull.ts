// make pull run=<id> | host=<name> [dest=<dir>]: brings a run's outputs, logs and metrics from the store to
// this machine (default outputs/<run_id>/), each file checked against the SHA-256 its runner
// recorded before it replaces anything there: a corrupt copy is never left behind.
import path from 'node:path';
import { z } from 'zod';
import { backendForHandle } from './lib/backends/index.js';
import { openProject, type Project } from './lib/project.js';
import { parseAttemptManifest } from './lib/runner/attempt-files.js';
import { ATTEMPT_FILES } from './lib/runner/attempt-spec.js';
import { runKeys, shardUnit, type AttemptRecord, type RunRecord } from './lib/runs/run-record.js';
import { loadRun } from './lib/runs/run-store.js';
import { readVars } from './lib/spec/make-vars.js';
import { writeAtomically } from './lib/store/atomic-file.js';
import type { Store } from './lib/store/store.js';
import { runMain, UserError } from './lib/ui/errors.js';
import { plural } from './lib/ui/plural.js';

/** Copies `key` into `dest` only if its bytes hash to `sha256`: fetched beside `dest`, compared, then renamed. */
async function fetchChecked(store: Store, key: string, dest: string, sha256: string): Promise<boolean> {
  try {
    await writeAtomically(dest, async (tmp) => {
      const got = await store.get(key, tmp);
      if (got.sha256 !== sha256) throw new Differs();
      return got;
    });
    return true;
  } catch (err) {
    if (err instanceof Differs) return false;
    throw err;
  }
}
class Differs extends Error {}

/** One run's outputs, logs, metrics and record into `dest`, each checked against the hash its runner recorded. */
async function pullRun(project: Project, run: RunRecord, dest: string): Promise<string> {
  // A run that ran elsewhere comes home to the store first (a no-op when the worker wrote to it).
  const lasts = run.shards?.length ? run.shards.map((s) => s.attempts.at(-1)) : [run.attempts.at(-1)];
  for (const last of lasts) {
    if (last?.handle && last.backend !== 'local') await (await backendForHandle(project, last.handle)).pull(last.handle);
  }
  const { store } = project;
  const differ: string[] = [];
  const unchecked: string[] = [];
  let count = 0;
  /** False when the stored bytes differ from `sha256` (nothing written); no hash: copied unchecked. */
  const copy = async (key: string, to: string, sha256: string | undefined): Promise<boolean> => {
    if (sha256 === undefined) {
      await store.get(key, to);
      unchecked.push(path.relative(dest, to));
    } else if (!(await fetchChecked(store, key, to, sha256))) return false;
    count++;
    return true;
  };
  const manifest = await store.getBytes(runKeys.outputsManifest(run.run_id));
  const outputs = manifest ? (JSON.parse(manifest.toString('utf8')) as { files: { path: string; sha256: string }[] }).files : [];
  for (const f of outputs) {
    const key = runKeys.output(run.run_id, f.path);
    if (!(await copy(key, path.join(dest, 'outputs', f.path), f.sha256))) differ.push(store.locate(key));
  }
  // Each attempt's logs, metrics and status: the run's own, or each shard's of a fleet search.
  const units = run.shards?.length
    ? run.shards.map((s) => ({ unit: shardUnit(run.run_id, s.index), attempts: s.attempts, dir: path.join(dest, 'shards', String(s.index)) }))
    : [{ unit: run.run_id, attempts: [...run.attempts, null], dir: dest }];
  for (const { unit, attempts, dir } of units) {
    const stored = new Set(await store.list(`${runKeys.dir(unit)}attempts/`));
    for (const a of attempts) {
      const n = a?.n ?? 'predict';
      const recorded = parseAttemptManifest(await store.getBytes(runKeys.attemptManifest(unit, n)));
      for (const name of ATTEMPT_FILES) {
        const key = runKeys.attemptFile(unit, n, name);
        if (!stored.has(key)) continue;
        // A running attempt's files grow between its runner's copies: not an error, just not yet.
        if (!(await copy(key, path.join(dir, 'attempts', String(n), name), recorded?.get(name)?.sha256)) && a?.state !== 'running') differ.push(store.locate(key));
      }
    }
  }
  await store.get(runKeys.record(run.run_id), path.join(dest, 'run.json'));
  if (differ.length) {
    const more = differ.length > 1 ? ` (and ${differ.length - 1} more)` : '';
    throw new UserError(`pull: ${differ[0]} does not match the SHA-256 its runner recorded${more}: corrupt in the store, not copied; the other files were pulled`);
  }
  const where = path.relative(process.cwd(), dest) || '.';
  const notes = [manifest ? '' : 'the run has no outputs yet', unchecked.length ? `${unchecked.length} with no recorded hash, not checked: ${unchecked.join(', ')}` : ''].filter(Boolean);
  return `pulled ${plural(count + 1, 'file')} of ${run.run_id} to ${where}/${notes.length ? ` (${notes.join('; ')})` : ''}`;
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
  const runs = project.db.list().filter((r) => r.attempts.some(ranThere) || r.shards?.some((s) => s.attempts.some(ranThere)));
  if (!runs.length) throw new UserError(`make pull: no run has run on host ${vars.host}`);
  for (const run of runs) console.log(await pullRun(project, run, path.join(vars.dest ? path.resolve(vars.dest) : path.join(project.root, 'outputs'), run.run_id)));
  return 0;
});
