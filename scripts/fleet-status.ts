// make fleet-status run=<id> | experiment=<slug>[/<name>]: the shards of a fleet search, each
// asked for its live state over SSH; works from any shell, the launcher need not be running.
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { openFleetRun, refreshFleetRun } from './lib/runs/fleet-search.js';
import { runState } from './lib/runs/run-record.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('fleet-status', { run: z.string().optional(), experiment: z.string().optional() });
  const project = await openProject();
  const { run, fleet } = await openFleetRun(project, vars, 'fleet-status');
  const supervisor = await refreshFleetRun(project, run, fleet);
  const done = run.shards!.filter((s) => s.attempts.at(-1)?.state === 'succeeded').length;
  console.log(`run ${run.run_id} on fleet ${fleet.fleet}: ${runState(run)}, ${done} of ${run.shards!.length} shards done`);
  console.log(supervisor.table());
  return 0;
});
