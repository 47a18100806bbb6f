// run.json: the durable record of one run, kept in the store (the source of truth). A run is N
// units, each with its own attempts, checkpoints and outputs: one unit covering the whole
// experiment, or one per shard of a sharded search. On disk the format stays the one every
// released version wrote: a one-unit run keeps its attempts at the top (`attempts`), a sharded
// run keeps one record per shard (`shards`).
import type { CommandSpec, ExperimentSpec } from '../spec/experiment.js';
import type { Pins } from '../pins/digest.js';
import type { BackendName } from '../config/define-config.js';
import type { Handle } from '../backends/backend.js';
import { TERMINAL, type AttemptState } from '../runner/attempt-spec.js';

export { ATTEMPT_STATES, TERMINAL, type AttemptState } from '../runner/attempt-spec.js';
export { runKeys } from '../store/run-keys.js';
export type RunState = AttemptState | 'created';

export interface AttemptRecord {
  n: number;
  backend: BackendName;
  /** null while the submit is in flight: recorded before the backend is asked */
  handle: Handle | null;
  /**
   * the slot its submit was sent to, recorded with it before the backend is asked: an attempt
   * left queued is submitted there again, where it may already run (absent in older records)
   */
  slot?: string;
  /**
   * a scheduler's submission it went in, recorded with the slot: the attempts submitted together
   * share it. A scheduler names a submission by its attempts (a Batch job ID, a SLURM job name),
   * so one left queued is submitted again only with exactly its group (absent for placers, whose
   * submits are found attempt by attempt, and in older records)
   */
  group?: string;
  state: AttemptState;
  reason: string | null;
  exit_code: number | null;
  started_at: string;
  ended_at: string | null;
  restored_step: number | null;
  last_step: number | null;
  /** runner events already written to the ledger (a cursor into the attempt's events.jsonl) */
  events_seen: number;
  /** the newest metrics line seen (absent in records older than the field) */
  metrics?: Record<string, unknown> | null;
}

export interface UnitRecord {
  index: number;
  attempts: AttemptRecord[];
  /** slots (hosts) this unit was moved away from, in order */
  moved_from: string[];
}

export interface RunRecord {
  run_id: string;
  experiment: string;
  created_at: string;
  pins: Pins;
  spec: ExperimentSpec;
  command: { train: CommandSpec; predict: CommandSpec | null };
  backends: BackendName[];
  /** set when this run deliberately repeats a finished run with the same pins (again=1) */
  replay_of: string | null;
  /** empty until the first launch decides how many there are */
  units: UnitRecord[];
  /** one unit per shard, stored under runs/<id>/shards/<i>/ and merged at the end */
  sharded: boolean;
  /** the fleet a sharded search was launched on */
  fleet?: string;
  /** a smoke run (make train-1): its spec has the `smoke:` overrides applied */
  smoke?: true;
  /** the best public score Kaggle gave the run's submissions (make submissions), by the competition's metric */
  public_score?: number;
  /**
   * The ledgers (by id: `ledgers/<id>/` in the store) holding entries of this run: more than one
   * when machines sharing the store took turns driving it (an agent in the store).
   */
  ledgers?: string[];
  /**
   * When a stop of the whole run (make stop, the agent's) was carried out: a unit it had not
   * started by then reads `cancelled`, as the units it stopped do, until it starts.
   */
  stopped_at?: string;
}

/** run.json as stored. */
interface RunJson extends Omit<RunRecord, 'units' | 'sharded'> {
  attempts: AttemptRecord[];
  shards?: UnitRecord[];
}

export function parseRunJson(text: string): RunRecord {
  const { attempts, shards, ...rest } = JSON.parse(text) as RunJson;
  if (shards?.length) return { ...rest, sharded: true, units: shards.map((s) => ({ ...s, moved_from: s.moved_from ?? [] })) };
  return { ...rest, sharded: false, units: attempts.length ? [{ index: 0, attempts, moved_from: [] }] : [] };
}

export function runJson(run: RunRecord): string {
  const { units, sharded, ...rest } = run;
  const disk: RunJson = sharded ? { ...rest, attempts: [], shards: units } : { ...rest, attempts: units[0]?.attempts ?? [] };
  return JSON.stringify(disk, null, 2) + '\n';
}

/** Gives a run its units on first launch: one per shard where the backend spreads shards, else one. */
export function ensureUnits(run: RunRecord, shards: boolean): UnitRecord[] {
  if (!run.units.length) {
    run.sharded = shards;
    const count = shards ? run.spec.shards.count : 1;
    run.units = Array.from({ length: count }, (_, index) => ({ index, attempts: [], moved_from: [] }));
  }
  return run.units;
}

/** The store name of a unit: the run id, or `<run_id>/shards/<i>` for one shard of a sharded run. */
export function unitKey(run: Pick<RunRecord, 'run_id' | 'sharded'>, index: number): string {
  return run.sharded ? shardUnit(run.run_id, index) : run.run_id;
}

export function shardUnit(runId: string, index: number): string {
  return `${runId}/shards/${index}`;
}

/** Every attempt of the run, unit by unit. */
export function allAttempts(run: RunRecord): AttemptRecord[] {
  return run.units.flatMap((u) => u.attempts);
}

// A run is as far as its least finished unit: running while any runs, succeeded when all did.
const STATE_ORDER: RunState[] = ['running', 'pending', 'queued', 'created', 'failed', 'timeout', 'cancelled', 'lost', 'preempted', 'succeeded'];

const furthestBack = (states: RunState[], none: RunState): RunState => STATE_ORDER.find((s) => states.includes(s)) ?? none;

/** The state of a unit not given an attempt yet, or of a run with no units yet: cut off by a stop, or not started. */
const unstarted = (run: Pick<RunRecord, 'stopped_at'>): RunState => (run.stopped_at ? 'cancelled' : 'created');

/** Whether a unit never went anywhere: no attempt, or its newest recorded but not sent (a submit that failed, or never made). */
const unitUnsent = (unit: UnitRecord): boolean => (unit.attempts.at(-1)?.state ?? 'queued') === 'queued';

/**
 * A whole run's stop carried out at `at`: recorded (`stopped_at`) when it cut off a unit that
 * never went anywhere, which then reads `cancelled` (unitState). False, changing nothing, when
 * every unit started: their attempts say how each ended.
 */
export function markStopped(run: RunRecord, at: string): boolean {
  if (run.units.length && !run.units.some(unitUnsent)) return false;
  run.stopped_at = at;
  return true;
}

/** A unit's state: its newest attempt's, else what a unit not started is (a stop cut it off, its queued attempt too). */
export function unitState(run: Pick<RunRecord, 'stopped_at'>, unit: UnitRecord): RunState {
  const state = unit.attempts.at(-1)?.state;
  return state === undefined || (state === 'queued' && run.stopped_at) ? unstarted(run) : state;
}

export function runState(run: RunRecord): RunState {
  return furthestBack(run.units.map((u) => unitState(run, u)), unstarted(run));
}

/** runState, from a run's summary. */
export function summaryState(summary: RunSummary): RunState {
  return furthestBack(Object.keys(summary.states) as RunState[], unstarted(summary));
}

/** The newest committed checkpoint step any attempt recorded (per unit: its own steps). */
export function lastStep(run: RunRecord): number | null {
  const steps = run.units.map((u) => [...u.attempts].reverse().find((a) => a.last_step !== null)?.last_step ?? null);
  return run.units.length === 1 ? steps[0]! : steps.every((s) => s !== null) && steps.length ? Math.min(...(steps as number[])) : null;
}

/**
 * What a list of runs shows of one run, kept beside its record in the index so that listing
 * thousands of runs parses a few hundred bytes each: no spec, no pins, no attempts, and no
 * per-shard rows (a 1,000-shard search summarises in the same few fields as a run of one unit).
 */
export interface RunSummary {
  run_id: string;
  experiment: string;
  created_at: string;
  sharded: boolean;
  fleet: string | null;
  units: number;
  /** attempts of all units together */
  attempts: number;
  /** the backend of the first unit's newest attempt */
  backend: BackendName | null;
  /** the hosts the units' newest attempts were placed on (ssh and fleet), each once, in unit order */
  hosts: string[];
  /** the newest metrics line of a run of one unit, as recorded */
  metrics: Record<string, unknown> | null;
  /** how many units stand in each state (unitState: their newest attempt's, or before the first `created`, `cancelled` once the run was stopped) */
  states: Partial<Record<RunState, number>>;
  /** the units' newest committed steps: lowest, highest, and how many units have one */
  steps: { lo: number; hi: number; known: number } | null;
  /** units whose newest attempt may still run, in unit order, with what polls them */
  live: { unit: number; state: RunState; handle: Handle; events_seen: number }[];
  /** the run's best public score on Kaggle (absent from summaries indexed before there was one) */
  public_score?: number;
  /** as the record's: its units not started read `cancelled` */
  stopped_at?: string;
}

export function summarize(run: RunRecord): RunSummary {
  const states: RunSummary['states'] = {};
  const live: RunSummary['live'] = [];
  let steps: RunSummary['steps'] = null;
  const hosts = new Set<string>();
  for (const u of run.units) {
    const last = u.attempts.at(-1);
    if (typeof last?.handle?.host === 'string') hosts.add(last.handle.host);
    const state = unitState(run, u);
    states[state] = (states[state] ?? 0) + 1;
    if (last?.handle && (state === 'running' || state === 'pending')) live.push({ unit: u.index, state, handle: last.handle, events_seen: last.events_seen });
    const step = [...u.attempts].reverse().find((a) => a.last_step !== null)?.last_step ?? null;
    if (step !== null) steps = steps ? { lo: Math.min(steps.lo, step), hi: Math.max(steps.hi, step), known: steps.known + 1 } : { lo: step, hi: step, known: 1 };
  }
  return {
    run_id: run.run_id,
    experiment: run.experiment,
    created_at: run.created_at,
    sharded: run.sharded,
    fleet: run.fleet ?? null,
    units: run.units.length,
    attempts: run.units.reduce((n, u) => n + u.attempts.length, 0),
    backend: run.units[0]?.attempts.at(-1)?.backend ?? null,
    hosts: [...hosts],
    metrics: run.units.length === 1 ? (run.units[0]!.attempts.at(-1)?.metrics ?? null) : null,
    states,
    steps,
    live,
    ...(run.public_score !== undefined ? { public_score: run.public_score } : {}),
    ...(run.stopped_at !== undefined ? { stopped_at: run.stopped_at } : {}),
  };
}

export function isTerminal(state: AttemptState): boolean {
  return TERMINAL.has(state);
}

/** Whether an attempt may still run: queued, pending or running. */
export function isLiveAttempt(a: AttemptRecord | undefined): a is AttemptRecord {
  return !!a && !TERMINAL.has(a.state);
}

/** Whether some unit's last attempt may still run. */
export function hasLiveUnit(run: RunRecord): boolean {
  return run.units.some((u) => isLiveAttempt(u.attempts.at(-1)));
}

/** Where a sharded run's merge writes: the merged records and the merge report. */
export const mergeKeys = {
  merged: (id: string) => `runs/${id}/outputs/merged.jsonl`,
  report: (id: string) => `runs/${id}/merge-report.json`,
  shardOutputs: (id: string, index: number) => `runs/${id}/shards/${index}/outputs/`,
};
