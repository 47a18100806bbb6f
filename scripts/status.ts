// make status [experiment=<slug>[/<name>]]: one row per run, newest first, live ones asked for
// their state (a run whose orchestrator died shows as lost).
// make status run=<id> (or experiment=<ref> detail=1; make fleet-status): that run's units, each asked where it runs now, and
// its attempts. Only looks: the process that follows the run records what happens.
// Both say first whether the agent runs, and per run what is wanted of it (finished, or closed
// and why); one run's attempts say how long each took to start after the one before ended.
import { z } from 'zod';
import { listRuns, lookAtUnits } from './lib/actions/look.js';
import type { UnitView } from './lib/runs/supervision.js';
import { unitTable } from './lib/cli/run-display.js';
import { runsTable, when } from './lib/cli/runs-table.js';
import { openProject, type Project } from './lib/project.js';
import { ANY, findRun } from './lib/runs/find-run.js';
import { isLiveAttempt, type AttemptRecord, type RunRecord } from './lib/runs/run-record.js';
import { describeAgent, lookAtAgent } from './lib/agent/agent-lock.js';
import { desiredRun, desiredRuns, type DesiredRun } from './lib/agent/desired.js';
import { agentHome, type AgentHome } from './lib/agent/home.js';
import { loadRun } from './lib/runs/run-store.js';
import { formatDuration } from './lib/ui/format.js';
import { parseExperimentRef } from './lib/spec/experiment.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { renderTable } from './lib/ui/table.js';

/** What is wanted of a run: finished (carried on by the agent), or nothing more and why. */
function wanted(d: DesiredRun | null | undefined): string {
  if (!d) return '-';
  if (!d.closed) return 'finished';
  return `closed (${d.closed.state}${d.closed.reason ? `: ${d.closed.reason}` : ''})${d.stop ? ', its attempts stopping' : ''}`;
}

// A unit not yet given an attempt counts as live too.
const stillLive = (run: RunRecord | null) => !run || run.units.some((u) => !u.attempts.length || isLiveAttempt(u.attempts.at(-1)));

/** From an attempt's end to the next attempt's start: how long the unit took to recover. */
function recovery(prev: AttemptRecord | undefined, a: AttemptRecord): string | null {
  if (!prev?.ended_at || a.state === 'queued') return null;
  return formatDuration(Math.max(0, Date.parse(a.started_at) - Date.parse(prev.ended_at)));
}

/**
 * A run's state from its units as asked now, as the list of runs shows it: running while any
 * unit may run, succeeded when all did, else the state of the first unit that did not (failed,
 * lost, cancelled...), never a vague "stopped".
 */
function overallState(units: readonly UnitView[]): string {
  if (units.some((u) => u.state === 'running' || u.state === 'pending' || u.state === 'unreachable')) return 'running';
  return units.find((u) => u.state !== 'succeeded')?.state ?? (units.length ? 'succeeded' : 'created');
}

async function oneRun(project: Project, home: AgentHome, found: RunRecord): Promise<void> {
  const [agent, want] = await Promise.all([lookAtAgent(home), desiredRun(home, found.run_id)]);
  console.log(describeAgent(agent));
  // An agent in the store may have written the run from another machine: its record there is the newest.
  const run = home.kind === 'store' && (want || stillLive(found)) ? await loadRun(project, found.run_id, { fresh: true }) : found;
  const units = await lookAtUnits(project, run);
  const done = units.filter((u) => u.state === 'succeeded').length;
  const overall = overallState(units);
  const where = run.fleet ? `fleet ${run.fleet}` : (units[0]?.backend ?? '-');
  console.log(`run ${run.run_id} on ${where}: ${overall}, ${done} of ${units.length} ${run.sharded ? 'shards' : 'units'} done; wanted: ${wanted(want)}`);
  if (run.sharded) console.log(unitTable(units));
  const rows = run.units.flatMap((u, k) =>
    u.attempts.map((a, i) => {
      // where it ran: the host, or a SLURM cluster's job id
      const where = typeof a.handle?.host === 'string' ? a.handle.host : a.backend === 'slurm' && a.handle ? `${String(a.handle.cluster)} job ${String(a.handle.job)}` : null;
      // A newest attempt recorded live is shown as asked now: its orchestrator killed, it is lost, not running.
      const state = i === u.attempts.length - 1 && isLiveAttempt(a) ? (units[k]?.state ?? a.state) : a.state;
      const row = [a.n, a.backend, where, state, a.last_step, when(a.started_at), when(a.ended_at), recovery(u.attempts[i - 1], a), a.reason];
      return run.sharded ? [u.index, ...row] : row;
    }),
  );
  const headers = ['ATTEMPT', 'BACKEND', 'HOST', 'STATE', 'CKPT', 'STARTED (UTC)', 'ENDED (UTC)', 'RECOVERY', 'REASON'];
  if (rows.length) console.log(renderTable(run.sharded ? ['SHARD', ...headers] : headers, rows));
}

void runMain(async () => {
  const vars = readVars('status', { experiment: z.string().optional(), run: z.string().optional(), detail: Flag.optional() });
  const project = await openProject();
  const home = agentHome(project);
  if (vars.run || vars.detail) return void (await oneRun(project, home, await findRun(project, vars, 'status', ANY)));
  let ref: string | undefined;
  if (vars.experiment) {
    const { slug, name } = parseExperimentRef(vars.experiment);
    ref = name === 'default' ? slug : `${slug}/${name}`;
  }
  const [agent, wants] = await Promise.all([lookAtAgent(home), desiredRuns(home).then((ds) => new Map(ds.map((d) => [d.run_id, d])))]);
  // Runs an agent in the store carries (another machine writes them): the newest records of
  // those this index does not have ended.
  if (home.kind === 'store') await Promise.all([...wants.keys()].filter((id) => stillLive(project.db.get(id))).map((id) => loadRun(project, id, { fresh: true }).catch(() => null)));
  const rows = await listRuns(project, ref);
  console.log(describeAgent(agent));
  if (!rows.length) {
    console.log(`no runs yet${ref ? ` for ${ref}` : ''}; start one with make train experiment=penguins`);
    return 0;
  }
  console.log(runsTable(rows, (id) => wanted(wants.get(id))));
  return 0;
});
