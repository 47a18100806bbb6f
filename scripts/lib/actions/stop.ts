// make stop: asks a run's live units to checkpoint and stop, and, unless another process follows
// the run (it records the ends), waits for them to end and records it. A whole run's stop also
// asks that process to stop the run (launcher-lock.ts), so the units it still has queued never
// start. Once the stop is carried out, the run's record says so, so that the units it cut off
// before they started read `cancelled`, as the ones it stopped do.
import { setTimeout as sleep } from 'node:timers/promises';
import { agentDrives, agentWho, lookAtAgent } from '../agent/agent-lock.js';
import { closeForStop, desiredRun, followerLive, stopCarried } from '../agent/desired.js';
import { agentHome, type AgentHome } from '../agent/home.js';
import { askAgent, untilSettled } from '../agent/requests.js';
import type { Backend } from '../backends/backend.js';
import { backendForHandle, backendForSlot } from '../backends/index.js';
import type { Project } from '../project.js';
import { askLauncherToStop, holdLauncher, launcherOf } from '../runs/launcher-lock.js';
import { hasLiveUnit, markStopped, runState, type RunRecord } from '../runs/run-record.js';
import { loadRun, runJournal, saveRun } from '../runs/run-store.js';
import { Supervisor } from '../runs/supervisor.js';
import { attemptSpec } from '../runs/unit-spec.js';
import { UserError } from '../ui/errors.js';

export interface StopResult {
  /** units asked to stop */
  asked: number[];
  /** units that could not be asked, and why */
  unreachable: { unit: number; why: string }[];
  /** the pid of the process that follows the run and records the ends, when there is one */
  follower: number | null;
  /** units still running when the wait gave up */
  running: number[];
}

const live = (run: RunRecord, only?: number[]) =>
  run.units.filter((u) => (!only || only.includes(u.index)) && ['running', 'pending'].includes(u.attempts.at(-1)?.state ?? '')).map((u) => u.index);

/** Units whose attempt was sent to a slot without its handle saved: it may run there, and is looked for. */
const sentUnsure = (run: RunRecord, only?: number[]) =>
  run.units.filter((u) => (!only || only.includes(u.index)) && u.attempts.at(-1)?.state === 'queued' && u.attempts.at(-1)?.slot !== undefined).map((u) => u.index);

/** What a stop did: asked the agent that carries the run, or stopped the units from here. */
export type StopOutcome =
  | { by: 'agent'; pid: number; who: string; answer: string; run: RunRecord; settled: boolean }
  | { by: 'here'; result: StopResult };

/**
 * make stop and the dashboard's Stop. A whole run the agent drives is stopped by the agent,
 * asked through its inbox (it records the ends); otherwise the run is first closed for the
 * agent, so none resumes it, with the stop owed (an agent sees it through should this process
 * die), then its units are stopped from here.
 */
export async function stopWanted(project: Project, run: RunRecord, opts: { force?: boolean; units?: number[] } = {}): Promise<StopOutcome> {
  const home = agentHome(project);
  const [wanted, agent] = await Promise.all([desiredRun(home, run.run_id), lookAtAgent(home)]);
  if (!opts.units && wanted && !wanted.closed && agentDrives(agent, run.run_id, launcherOf(project, run.run_id))) {
    const who = agentWho(agent.info);
    const answer = await askAgent(home, { verb: 'stop', run_id: run.run_id, force: opts.force }, who);
    const now = await untilSettled(project, home, run.run_id, (run.spec.train.grace_sec + 30) * 1000);
    return { by: 'agent', pid: agent.info.pid, who, answer, run: now, settled: !hasLiveUnit(now) };
  }
  const asked = [...live(run, opts.units), ...sentUnsure(run, opts.units)].sort((a, b) => a - b);
  // A launcher may follow a run with nothing live at this moment: its units queued, or between two.
  const launcherWaits = !opts.units && runState(run) !== 'succeeded' && launcherOf(project, run.run_id) !== null;
  // A shell on another machine that follows the run (a store home) writes its record: it leaves
  // once it sees the stop, and the record is left to it.
  const seenThrough = () => (followerLive(wanted?.follower, home.staleMs) ? stopCarried(home, run.run_id) : stopSeenThrough(project, home, run.run_id));
  if (!asked.length && !launcherWaits) {
    const last = run.units.length === 1 ? run.units[0]!.attempts.at(-1)?.state : null;
    if (!opts.units && !wanted?.closed) {
      // Closed as stopped, so none resumes it, with nothing left to stop.
      await closeForStop(home, run.run_id, opts.force === true);
      await seenThrough();
    }
    throw new UserError(`stop: run ${run.run_id} is not running${last ? ` (${last})` : run.units.length ? '' : ' (no attempts)'}`);
  }
  // A whole run's stop is owed until its attempts have ended: should this process die first,
  // the agent sees it through.
  if (!opts.units) await closeForStop(home, run.run_id, opts.force === true);
  const result = await stopRun(project, run, opts, asked);
  if (!opts.units && !result.running.length && !result.unreachable.length) await seenThrough();
  return { by: 'here', result };
}

/** A whole run's stop, seen through (none of its attempts is live): recorded in the run, and owed no more. */
export async function stopSeenThrough(project: Project, home: AgentHome, runId: string): Promise<void> {
  await recordStopped(project, runId);
  await stopCarried(home, runId);
}

/**
 * Records in the run's record that a stop ended it (`stopped_at`), when some unit had not
 * started: such a unit then reads `cancelled` (run-record.ts). Only as the run's one writer,
 * under its launcher lock: a process that follows the run again meanwhile (a new launch) owns it.
 */
async function recordStopped(project: Project, runId: string): Promise<void> {
  const release = await holdLauncher(project, runId);
  if (!release) return;
  try {
    const run = await loadRun(project, runId, { fresh: true });
    if (markStopped(run, new Date().toISOString())) await saveRun(project, run);
  } finally {
    release();
  }
}

async function stopRun(project: Project, run: RunRecord, opts: { force?: boolean; units?: number[] }, asked: number[]): Promise<StopResult> {
  // With no other process following the run, this one follows it while its attempts end (it
  // records them), as their launcher: no agent takes the run up meanwhile.
  const release = await holdLauncher(project, run.run_id);
  try {
    return await askAndFollow(project, run, opts, asked, release ? null : launcherOf(project, run.run_id));
  } finally {
    release?.();
  }
}

async function askAndFollow(project: Project, run: RunRecord, opts: { force?: boolean; units?: number[] }, asked: number[], follower: number | null): Promise<StopResult> {
  const unreachable: StopResult['unreachable'] = [];
  // One backend per place, shared by its units: a scheduler stops a job once all of its units were asked.
  const opened = new Map<string, Promise<Backend>>();
  const backendOf = (unit: number) => {
    const { handle: h, backend, slot } = run.units[unit]!.attempts.at(-1)!;
    const key = JSON.stringify(h ? [h.backend, h.host ?? null, h.fleet ?? null, h.entry ?? null, h.cluster ?? null] : [backend, slot]);
    if (!opened.has(key)) opened.set(key, h ? backendForHandle(project, h) : backendForSlot(project, backend, slot!, run.fleet));
    return opened.get(key)!;
  };
  if (follower !== null) {
    // The follower records what ends: only ask. A whole run's stop asks the follower first, so
    // that it starts nothing more (its queued units), then the live units, should it not answer.
    if (!opts.units) await askLauncherToStop(project, run.run_id, { force: opts.force === true });
    // An attempt without a handle is the follower's to look for (its submit may be on its way).
    await Promise.all(
      asked.map(async (unit) => {
        const h = run.units[unit]!.attempts.at(-1)!.handle;
        if (h) await (await backendOf(unit)).cancel(h, { force: opts.force }).catch((err: Error) => unreachable.push({ unit, why: err.message.split('\n')[0]! }));
      }),
    );
    // Wait until the follower has recorded their ends; for a whole run's stop, until it has let
    // the run go (it was asked to stop it), so that what it never started can be recorded.
    const until = Date.now() + (run.spec.train.grace_sec + 30) * 1000;
    let now = run;
    while ((live(now, opts.units).length || !opts.units) && Date.now() < until && launcherOf(project, run.run_id) !== null) {
      await sleep(250);
      now = project.db.get(run.run_id) ?? now;
    }
    // Once more: the follower may have recorded the ends and exited while the asks were going on.
    now = project.db.get(run.run_id) ?? now;
    Object.assign(run, now);
    return { asked: asked.filter((u) => !unreachable.some((x) => x.unit === u)), unreachable, follower, running: live(now, opts.units) };
  }
  if (!asked.length) return { asked, unreachable, follower: null, running: [] }; // the launcher that waited ended meanwhile
  const backend = await backendOf(asked[0]!);
  const supervisor = new Supervisor({
    run,
    backend,
    openBackend: (name) => (name === backend.name ? Promise.resolve(backend) : backendOf(run.units.find((u) => u.attempts.at(-1)?.backend === name)!.index)),
    journal: runJournal(project),
    specFor: (unit, attempt) => attemptSpec(project, run, unit, attempt),
    maxAttempts: 0,
    only: opts.units,
    sink: (e) => {
      if (e.type === 'notice' && e.line.startsWith('could not ask it to stop')) unreachable.push({ unit: e.unit, why: e.line });
    },
  });
  const deadline = setTimeout(() => supervisor.detach(), (run.spec.train.grace_sec + 30) * 1000);
  await supervisor.follow({ stop: { force: opts.force } }).finally(() => clearTimeout(deadline));
  return { asked: asked.filter((u) => !unreachable.some((x) => x.unit === u)), unreachable, follower: null, running: live(run, opts.units) };
}
