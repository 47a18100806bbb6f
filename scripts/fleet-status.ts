// make fleet-status run=<id> | experiment=<slug>[/<name>]: the shards of a fleet search, each
// asked for its live state over SSH; works from any shell, the launcher need not be running,
// and records nothing (the launcher, fleet-pull, fleet-stop or merge do).
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { FleetSupervisor } from './lib/runs/drive-fleet.js';
import { openFleetRun } from './lib/runs/fleet-search.js';
import { LiveTable } from './lib/ui/live-table.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('fleet-status', { run: z.string().optional(), experiment: z.string().optional() });
  const project = await openProject();
  const { run, fleet } = await openFleetRun(project, vars, 'fleet-status');
  const supervisor = new FleetSupervisor(project, run, fleet, new LiveTable());
  await supervisor.look(); // read-only: a launcher following the shards keeps recording them
  const states = run.shards!.map((s) => supervisor.stateOf(s.index));
  const done = states.filter((s) => s === 'succeeded').length;
  const overall = states.includes('running') || states.includes('unreachable') ? 'running' : done === states.length ? 'succeeded' : 'stopped';
  console.log(`run ${run.run_id} on fleet ${fleet.fleet}: ${overall}, ${done} of ${run.shards!.length} shards done`);
  console.log(supervisor.table());
  return 0;
});
