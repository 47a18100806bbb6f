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

export function runState(run: RunRecord): RunState {
  if (!run.units.length) return 'created';
  const states = run.units.map((u): RunState => u.attempts.at(-1)?.state ?? 'created');
  return STATE_ORDER.find((s) => states.includes(s)) ?? 'created';
}

/** The newest committed checkpoint step any attempt recorded (per unit: its own steps). */
export function lastStep(run: RunRecord): number | null {
  const steps = run.units.map((u) => [...u.attempts].reverse().find((a) => a.last_step !== null)?.last_step ?? null);
  return run.units.length === 1 ? steps[0]! : steps.every((s) => s !== null) && steps.length ? Math.min(...(steps as number[])) : null;
}

export function isTerminal(state: AttemptState): boolean {
  return TERMINAL.has(state);
}

/** Where a sharded run's merge writes: the merged records and the merge report. */
export const mergeKeys = {
  merged: (id: string) => `runs/${id}/outputs/merged.jsonl`,
  report: (id: string) => `runs/${id}/merge-report.json`,
  shardOutputs: (id: string, index: number) => `runs/${id}/shards/${index}/outputs/`,
};
