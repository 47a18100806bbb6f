// make pull run=<id> | host=<name> [dest=<dir>]: brings a run's outputs, logs and metrics from the store to
// this machine (default outputs/<run_id>/), each file checked against the SHA-256 its runner
// recorded before it replaces anything there: a corrupt copy is never left behind.
import path from 'node:path';
import { z } from 'zod';
import { pullRun } from './lib/actions/pull.js';
import { openProject, type Project } from './lib/project.js';
import type { AttemptRecord, RunRecord } from './lib/runs/run-record.js';
import { loadRun } from './lib/runs/run-store.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';
import { plural } from './lib/ui/plural.js';

async function pullLine(project: Project, run: RunRecord, dest: string): Promise<string> {
  const r = await pullRun(project, run, dest);
  const where = path.relative(process.cwd(), dest) || '.';
  const notes = [r.noOutputs ? 'the run has no outputs yet' : '', r.unchecked.length ? `${r.unchecked.length} with no recorded hash, not checked: ${r.unchecked.join(', ')}` : ''].filter(Boolean);
  return `pulled ${plural(r.files, 'file')} of ${run.run_id} to ${where}/${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

void runMain(async () => {
  const vars = readVars('pull', { run: z.string().optional(), host: z.string().optional(), dest: z.string().optional() });
  const project = await openProject();
  if (vars.run) {
    const run = await loadRun(project, vars.run);
    console.log(await pullLine(project, run, path.resolve(vars.dest ?? path.join(project.root, 'outputs', run.run_id))));
    return 0;
  }
  if (!vars.host) throw new UserError('make pull: give run=<id>, or host=<name> for every run that ran there');
  const ranThere = (a: AttemptRecord) => a.handle?.host === vars.host;
  const runs = project.db.list().filter((r) => r.units.some((u) => u.attempts.some(ranThere)));
  if (!runs.length) throw new UserError(`make pull: no run has run on host ${vars.host}`);
  for (const run of runs) console.log(await pullLine(project, run, path.join(vars.dest ? path.resolve(vars.dest) : path.join(project.root, 'outputs'), run.run_id)));
  return 0;
});
