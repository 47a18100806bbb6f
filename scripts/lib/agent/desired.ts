// The runs the agent carries, and what is wanted of each: finished. `make train` records a run
// here when it opens it (with where to run it: backend, host, fleet, batch entry, cluster), so a
// run whose shell died is carried on; the run's end, a stop, or giving up closes the entry,
// keeping the outcome for `make status`. One small JSON file per run, `runs/<id>.json` in the
// agent's home (home.ts), replaced whole.
//
// A shell that follows a run in the foreground holds its launcher lock (runs/launcher-lock.ts),
// which only its own machine can see. With the home in a store, an agent elsewhere tells a
// followed run by the record's `follower`, whose heartbeat the shell renews (follower.ts).
import { hostname } from 'node:os';
import type { BackendName } from '../config/define-config.js';
import { isAlive } from '../process-alive.js';
import { resumes } from '../runs/failover.js';
import { runState, type RunRecord } from '../runs/run-record.js';
import type { AgentHome } from './home.js';

export interface Follower {
  host: string;
  pid: number;
  pid_start: string | null;
  beat_at: string;
}

export interface DesiredRun {
  run_id: string;
  backend: BackendName;
  host?: string;
  fleet?: string;
  batch?: string;
  cluster?: string;
  /** when it was asked for */
  since: string;
  /** the machine it was launched from: an attempt running there in-process or as a local runner is followed only there */
  launched_on?: string;
  /** the shell following it in the foreground (a store home), with its heartbeat */
  follower?: Follower;
  /** units to (re)run, finished or not (make retry); absent: every unfinished one */
  only?: number[];
  /** the slot (host) those start on */
  slot?: string;
  /** set once nothing more is wanted: how it ended, when, and why */
  closed?: { state: string; at: string; reason: string | null };
  /**
   * A stop taken (by the agent, or by make stop from a shell) and not yet seen through: the
   * agent stops the run's live attempts and follows them to their ends, again after a drive
   * that failed, or when whoever took the stop died first.
   */
  stop?: { force: boolean };
}

const file = (runId: string) => `runs/${runId}.json`;

function parse(text: string | null): DesiredRun | null {
  try {
    return text ? (JSON.parse(text) as DesiredRun) : null;
  } catch {
    return null; // being replaced by hand: looked at again next tick
  }
}

export async function desiredRun(home: AgentHome, runId: string): Promise<DesiredRun | null> {
  return parse(await home.read(file(runId)));
}

/** Every run asked for, open or closed. */
export async function desiredRuns(home: AgentHome): Promise<DesiredRun[]> {
  const names = (await home.list('runs')).filter((f) => f.endsWith('.json'));
  const runs = await Promise.all(names.map((f) => desiredRun(home, f.slice(0, -'.json'.length))));
  return runs.filter((d): d is DesiredRun => !!d);
}

const write = (home: AgentHome, d: DesiredRun) => home.write(file(d.run_id), JSON.stringify(d, null, 2) + '\n');

/** Asks for a run to be finished (again: a closed entry opens). */
export async function wantRun(home: AgentHome, d: Omit<DesiredRun, 'since' | 'closed'>): Promise<void> {
  const clean = Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)) as unknown as Omit<DesiredRun, 'since'>;
  await write(home, { ...clean, since: new Date().toISOString() });
}

const closedNow = (state: string, reason: string | null) => ({ state, at: new Date().toISOString(), reason });

/** How a run that `make stop` ended closes. */
export const STOPPED = { state: 'cancelled', reason: 'make stop' } as const;

/** Nothing more is wanted of a run: it finished, was stopped, or was given up on. */
export async function closeRun(home: AgentHome, runId: string, state: string, reason: string | null): Promise<void> {
  const d = await desiredRun(home, runId);
  if (!d || d.closed) return;
  const { follower: _gone, ...rest } = d;
  await write(home, { ...rest, closed: closedNow(state, reason) });
}

/** A whole run's stop: the run closes as stopped, and the stop is owed until its attempts have ended. */
export async function closeForStop(home: AgentHome, runId: string, force: boolean): Promise<void> {
  const d = await desiredRun(home, runId);
  if (!d) return;
  const { follower: _gone, ...rest } = d;
  await write(home, { ...rest, closed: d.closed ?? closedNow(STOPPED.state, STOPPED.reason), stop: { force } });
}

/** The stop is seen through: none of the run's attempts is live any more. */
export async function stopCarried(home: AgentHome, runId: string): Promise<void> {
  const d = await desiredRun(home, runId);
  if (!d?.stop) return;
  const { stop: _done, ...rest } = d;
  await write(home, rest);
}

/** Names (or clears) the shell that follows the run. */
export async function setFollower(home: AgentHome, d: DesiredRun, follower: Follower | undefined): Promise<void> {
  const { follower: _old, ...rest } = d;
  await write(home, follower ? { ...rest, follower } : rest);
}

/** Whether the named shell still follows: its pid on its own machine, its heartbeat elsewhere. */
export function followerLive(f: Follower | undefined, staleMs: number, now = Date.now()): boolean {
  if (!f) return false;
  if (f.host === hostname()) return isAlive(f.pid, f.pid_start);
  return now - Date.parse(f.beat_at) <= staleMs;
}

/** Whether a run has nothing left to do: every unit succeeded, or its last attempt ended in a way that does not resume. */
export function settledState(run: RunRecord): { done: boolean; state: string; reason: string | null } {
  const state = runState(run);
  if (state === 'succeeded') return { done: true, state, reason: null };
  if (!run.units.length) return { done: false, state, reason: null };
  for (const u of run.units) {
    const last = u.attempts.at(-1);
    if (!last || last.state === 'succeeded') continue;
    if (!['failed', 'cancelled', 'timeout'].includes(last.state) || resumes(last, u.attempts, run.spec)) return { done: false, state, reason: null };
  }
  const last = run.units.map((u) => u.attempts.at(-1)).find((a) => a && a.state !== 'succeeded');
  return { done: true, state, reason: last?.reason ?? null };
}
