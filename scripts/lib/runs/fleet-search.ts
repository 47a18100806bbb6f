// The launcher side of a fleet search, shared by make train backend=fleet (fleet-search) and
// make fleet-retry: drive the shards with the progress table, detach on a signal (the shards
// live on in tmux on their hosts), and merge once every shard has succeeded.
import { openBackend } from '../backends/index.js';
import type { FleetBackend } from '../backends/fleet.js';
import type { Project } from '../project.js';
import { LiveTable } from '../ui/live-table.js';
import { UserError } from '../ui/errors.js';
import { exitCodeFor } from './describe.js';
import { allShardsSucceeded, FleetSupervisor, type FleetDriveOptions } from './drive-fleet.js';
import { findRun } from './find-run.js';
import { followedElsewhere, holdLauncher, launcherOf } from './launcher-lock.js';
import { describeMerge, mergeRun } from './merge-run.js';
import { type RunRecord } from './run-record.js';

export async function searchOnFleet(
  project: Project,
  run: RunRecord,
  fleet: FleetBackend,
  opts: Pick<FleetDriveOptions, 'only' | 'host' | 'requeue'> = {},
): Promise<number> {
  const release = await holdLauncher(project, run.run_id);
  if (!release) throw followedElsewhere(project, run);
  try {
    return await followOnFleet(project, run, fleet, opts);
  } finally {
    release();
  }
}

async function followOnFleet(project: Project, run: RunRecord, fleet: FleetBackend, opts: Pick<FleetDriveOptions, 'only' | 'host' | 'requeue'>): Promise<number> {
  const table = new LiveTable();
  let detached = false;
  const detach = (signal: string) => {
    if (detached) process.exit(130);
    detached = true;
    table.say(`${signal}: detaching; the shards keep running on their hosts`);
    table.say(`  make fleet-status run=${run.run_id}   ·   make fleet-stop run=${run.run_id}   ·   make train experiment=${run.experiment} backend=fleet fleet=${fleet.fleet} re-attaches`);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => detach(signal));

  const supervisor = new FleetSupervisor(project, run, fleet, table);
  const state = await supervisor.drive({ ...opts, maxAttempts: project.config.defaults.max_attempts, detached: () => detached });
  if (detached) return 0;
  if (!allShardsSucceeded(run)) {
    const unfinished = run.shards!.filter((s) => s.attempts.at(-1)?.state !== 'succeeded').map((s) => s.index);
    table.say(`run ${run.run_id} ${state}: shard${unfinished.length > 1 ? 's' : ''} ${unfinished.join(', ')} did not finish`);
    table.say(`  make fleet-retry run=${run.run_id} shard=${unfinished.join(',')} [host=<name>] re-runs them from their last checkpoint`);
    return exitCodeFor(state, null);
  }
  const summary = await mergeRun(project, run);
  for (const line of describeMerge(summary, project.store.locate(summary.merged.key))) table.say(line);
  return 0;
}

/** A fleet search by run= (or the newest of experiment=), with the fleet it runs on. */
export async function openFleetRun(project: Project, vars: { run?: string; experiment?: string }, verb: string): Promise<{ run: RunRecord; fleet: FleetBackend }> {
  const run = await findRun(project, vars, verb, (r) => !!r.shards?.length, 'fleet search');
  if (!run.shards?.length || !run.fleet) {
    throw new UserError(`make ${verb}: run ${run.run_id} is not a fleet search; start one with make fleet-search experiment=<slug> fleet=<name>`);
  }
  return { run, fleet: (await openBackend('fleet', project, { fleet: run.fleet })) as FleetBackend };
}

/**
 * Polls the running shards of a search once, recording what ended, unless a launcher in another
 * shell follows them (it records them itself: then this only looks).
 */
export async function refreshFleetRun(project: Project, run: RunRecord, fleet: FleetBackend, table = new LiveTable()): Promise<FleetSupervisor> {
  const supervisor = new FleetSupervisor(project, run, fleet, table);
  if (launcherOf(project, run.run_id) !== null) await supervisor.look();
  else await supervisor.refresh();
  return supervisor;
}
