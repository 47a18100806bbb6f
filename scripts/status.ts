// make status [experiment=<slug>[/<name>]]: one row per run, newest first, live ones asked for
// their state (a run whose orchestrator died shows as lost).
// make status run=<id> (or experiment=<ref> detail=1; make fleet-status): that run's units, each asked where it runs now, and
// its attempts. Only looks: the process that follows the run records what happens.
import { z } from 'zod';
import { listRuns, lookAtUnits } from './lib/actions/look.js';
import { unitTable } from './lib/cli/run-display.js';
import { runsTable, when } from './lib/cli/runs-table.js';
import { openProject, type Project } from './lib/project.js';
import { findRun } from './lib/runs/find-run.js';
import type { RunRecord } from './lib/runs/run-record.js';
import { parseExperimentRef } from './lib/spec/experiment.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { renderTable } from './lib/ui/table.js';

async function oneRun(project: Project, run: RunRecord): Promise<void> {
  const units = await lookAtUnits(project, run);
  const done = units.filter((u) => u.state === 'succeeded').length;
  const live = units.some((u) => u.state === 'running' || u.state === 'pending' || u.state === 'unreachable');
  const overall = live ? 'running' : done === units.length && units.length ? 'succeeded' : 'stopped';
  const where = run.fleet ? `fleet ${run.fleet}` : (units[0]?.backend ?? '-');
  console.log(`run ${run.run_id} on ${where}: ${overall}, ${done} of ${units.length} ${run.sharded ? 'shards' : 'units'} done`);
  if (run.sharded) console.log(unitTable(units));
  const rows = run.units.flatMap((u) =>
    u.attempts.map((a) => {
      // where it ran: the host, or a SLURM cluster's job id
      const where = typeof a.handle?.host === 'string' ? a.handle.host : a.backend === 'slurm' && a.handle ? `${String(a.handle.cluster)} job ${String(a.handle.job)}` : null;
      const row = [a.n, a.backend, where, a.state, a.last_step, when(a.started_at), when(a.ended_at), a.reason];
      return run.sharded ? [u.index, ...row] : row;
    }),
  );
  const headers = ['ATTEMPT', 'BACKEND', 'HOST', 'STATE', 'CKPT', 'STARTED (UTC)', 'ENDED (UTC)', 'REASON'];
  if (rows.length) console.log(renderTable(run.sharded ? ['SHARD', ...headers] : headers, rows));
}

await runMain(async () => {
  const vars = readVars('status', { experiment: z.string().optional(), run: z.string().optional(), detail: Flag.optional() });
  const project = await openProject();
  if (vars.run || vars.detail) return void (await oneRun(project, await findRun(project, vars, 'status', () => true, 'run')));
  let ref: string | undefined;
  if (vars.experiment) {
    const { slug, name } = parseExperimentRef(vars.experiment);
    ref = name === 'default' ? slug : `${slug}/${name}`;
  }
  const rows = await listRuns(project, ref);
  if (!rows.length) {
    console.log(`no runs yet${ref ? ` for ${ref}` : ''}; start one with make train experiment=penguins`);
    return 0;
  }
  console.log(runsTable(rows));
  return 0;
});
