// The runs the agent carries, and what is wanted of each: finished. `make train` records a run
// here when it opens it (with where to run it: backend, host, fleet, batch entry, cluster), so a
// run whose shell died is carried on; the run's end, a stop, or giving up closes the entry,
// keeping the outcome for `make status`. One small JSON file per run, `runs/<id>.json` in the
// agent's home (home.ts), replaced whole.
//
// A whole run's stop is kept apart, in `stops/<id>.json`, which only a stop writes: the run's
// entry is read, changed and written back by others (the heartbeat below, an agent taking a run
// over), and a stop written into it between such a read and its write would be lost. Readers
// see the two as one (`desiredRun`): a stopped run is closed, with its stop owed till carried out.
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

/** How a run that `make stop` ended closes. */
export const STOPPED = { state: 'cancelled', reason: 'make stop' } as const;

/** The run's entry as this version writes it: everything but a stop. */
type Entry = Omit<DesiredRun, 'stop'>;

/** A whole run's stop, as its own file keeps it. */
interface StopMark {
  force: boolean;
  /** when it was taken: the run's closing time */
  at: string;
  /** none of the run's attempts is live any more: nothing is owed */
  carried?: true;
}

const file = (runId: string) => `runs/${runId}.json`;
const stopFile = (runId: string) => `stops/${runId}.json`;

function parse<T>(text: string | null): T | null {
  try {
    return text ? (JSON.parse(text) as T) : null;
  } catch {
    return null; // being replaced by hand: looked at again next tick
  }
}

const readEntry = async (home: AgentHome, runId: string) => parse<DesiredRun>(await home.read(file(runId)));
const readStop = async (home: AgentHome, runId: string) => parse<StopMark>(await home.read(stopFile(runId)));

/** The stop an entry written before stops were kept apart holds, as its mark. */
const stopWrittenIn = (entry: DesiredRun | null): StopMark | null => (entry?.stop ? { force: entry.stop.force, at: entry.closed?.at ?? entry.since } : null);

/** The entry as its readers see it: a stopped run is closed (unless it had closed before), nobody follows it, and its stop is owed till carried out. */
function withStop(asWritten: DesiredRun, stopMark: StopMark | null): DesiredRun {
  const { stop: _inEntry, ...entry } = asWritten;
  const mark = stopMark ?? stopWrittenIn(asWritten);
  if (!mark) return entry;
  const { follower: _gone, ...rest } = entry;
  const closed = entry.closed ?? { state: STOPPED.state, at: mark.at, reason: STOPPED.reason };
  return mark.carried ? { ...rest, closed } : { ...rest, closed, stop: { force: mark.force } };
}

export async function desiredRun(home: AgentHome, runId: string): Promise<DesiredRun | null> {
  const [entry, mark] = await Promise.all([readEntry(home, runId), readStop(home, runId)]);
  return entry && withStop(entry, mark);
}

/** Every run asked for, open or closed. */
export async function desiredRuns(home: AgentHome): Promise<DesiredRun[]> {
  const ids = (names: string[]) => names.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
  const [runIds, stopped] = await Promise.all([home.list('runs').then(ids), home.list('stops').then((n) => new Set(ids(n)))]);
  const runs = await Promise.all(
    runIds.map(async (id) => {
      const [entry, mark] = await Promise.all([readEntry(home, id), stopped.has(id) ? readStop(home, id) : null]);
      return entry && withStop(entry, mark);
    }),
  );
  return runs.filter((d): d is DesiredRun => !!d);
}

const write = (home: AgentHome, d: Entry) => home.write(file(d.run_id), JSON.stringify(d, null, 2) + '\n');
const writeStop = (home: AgentHome, runId: string, mark: StopMark) => home.write(stopFile(runId), JSON.stringify(mark, null, 2) + '\n');

/** Asks for a run to be finished (again: a closed or stopped entry opens). */
export async function wantRun(home: AgentHome, d: Omit<DesiredRun, 'since' | 'closed' | 'stop'>): Promise<void> {
  const clean = Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)) as unknown as Omit<Entry, 'since'>;
  // The old stop goes first, so that a stop taken after it (make stop, meanwhile) stands.
  await home.remove(stopFile(d.run_id));
  await write(home, { ...clean, since: new Date().toISOString() });
}

/**
 * The units of a retry still owed: those with no attempt recorded since it was asked. A unit's
 * attempt is recorded (queued) before its submit, so a drive that failed before (no host could be
 * prepared, say) leaves the unit owed, and one cut off after leaves its attempt for the next
 * drive to submit again, as any queued attempt is.
 */
export function retryOwed(d: DesiredRun, run: RunRecord): number[] {
  const askedAt = Date.parse(d.since);
  return (d.only ?? []).filter((i) => !(run.units[i]?.attempts ?? []).some((a) => Date.parse(a.started_at) >= askedAt));
}

/** A retry's units were asked once: the entry goes back to every unfinished unit, leaving a stop taken meanwhile standing. */
export async function retryTaken(home: AgentHome, d: DesiredRun): Promise<DesiredRun> {
  const { only: _units, slot: _slot, follower: _follower, ...rest } = d;
  await write(home, rest);
  return rest;
}

const closedNow = (state: string, reason: string | null) => ({ state, at: new Date().toISOString(), reason });

/** Nothing more is wanted of a run: it finished, was stopped, or was given up on. */
export async function closeRun(home: AgentHome, runId: string, state: string, reason: string | null): Promise<void> {
  const [entry, mark] = await Promise.all([readEntry(home, runId), readStop(home, runId)]);
  if (!entry || entry.closed || mark) return;
  const { follower: _gone, ...rest } = entry;
  await write(home, { ...rest, closed: closedNow(state, reason) });
}

/** A whole run's stop: the run closes as stopped, and the stop is owed until its attempts have ended. */
export async function closeForStop(home: AgentHome, runId: string, force: boolean): Promise<void> {
  const [entry, mark] = await Promise.all([readEntry(home, runId), readStop(home, runId)]);
  if (!entry) return;
  await writeStop(home, runId, { force, at: mark?.at ?? new Date().toISOString() });
}

/** The stop is seen through: none of the run's attempts is live any more. */
export async function stopCarried(home: AgentHome, runId: string): Promise<void> {
  const [entry, stopMark] = await Promise.all([readEntry(home, runId), readStop(home, runId)]);
  const mark = stopMark ?? stopWrittenIn(entry);
  if (!mark || mark.carried) return;
  await writeStop(home, runId, { ...mark, carried: true });
}

/** Names (or clears) the shell that follows the run, in its entry as read (`d`); a stop, kept apart, stands. */
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
