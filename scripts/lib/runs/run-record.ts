// run.json: the durable record of one run, kept in the store (the source of truth).
import type { CommandSpec, ExperimentSpec } from '../spec/experiment.js';
import type { Pins } from '../pins/digest.js';
import type { BackendName } from '../config/define-config.js';

export const ATTEMPT_STATES = ['queued', 'running', 'succeeded', 'failed', 'preempted', 'lost', 'cancelled'] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];
export type RunState = AttemptState | 'created';

/** Plain JSON a backend needs to find its attempt again, persisted so a restart can re-attach. */
export type Handle = { backend: BackendName } & Record<string, unknown>;

export interface AttemptRecord {
  n: number;
  backend: BackendName;
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

/** One shard of a fleet search: its own attempts, each on some host of the fleet. */
export interface ShardRecord {
  index: number;
  attempts: AttemptRecord[];
  /** hosts this shard was moved away from (lost mid-search), in order */
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
  attempts: AttemptRecord[];
  /** a fleet search: one record per shard (attempts above stay empty) */
  shards?: ShardRecord[];
  /** the fleet it was launched on */
  fleet?: string;
}

/** The record of an attempt just submitted. */
export function startedAttempt(n: number, backend: BackendName, handle: Handle): AttemptRecord {
  return {
    n,
    backend,
    handle,
    state: 'running',
    reason: null,
    exit_code: null,
    started_at: new Date().toISOString(),
    ended_at: null,
    restored_step: null,
    last_step: null,
    events_seen: 0,
  };
}

export const TERMINAL: ReadonlySet<AttemptState> = new Set(['succeeded', 'failed', 'preempted', 'lost', 'cancelled']);

// A sharded run is as far as its least finished shard: running while any runs, succeeded when all did.
const SHARD_STATE_ORDER: RunState[] = ['running', 'queued', 'created', 'failed', 'cancelled', 'lost', 'preempted', 'succeeded'];

export function runState(run: RunRecord): RunState {
  if (run.shards?.length) {
    const states = run.shards.map((s): RunState => s.attempts.at(-1)?.state ?? 'created');
    return SHARD_STATE_ORDER.find((s) => states.includes(s)) ?? 'created';
  }
  return run.attempts.at(-1)?.state ?? 'created';
}

/** The store name of one shard of a run: its checkpoints, outputs and attempts live under runs/<it>/. */
export function shardUnit(runId: string, index: number): string {
  return `${runId}/shards/${index}`;
}

export function lastStep(run: RunRecord): number | null {
  for (const a of [...run.attempts].reverse()) if (a.last_step !== null) return a.last_step;
  return null;
}

/** Where a fleet search's merge writes: the merged records and the merge report. */
export const mergeKeys = {
  merged: (id: string) => `runs/${id}/outputs/merged.jsonl`,
  report: (id: string) => `runs/${id}/merge-report.json`,
  shardOutputs: (id: string, index: number) => `runs/${id}/shards/${index}/outputs/`,
};

/** Store keys of a run's parts. */
export const runKeys = {
  dir: (id: string) => `runs/${id}/`,
  record: (id: string) => `runs/${id}/run.json`,
  sourceDiff: (id: string) => `runs/${id}/source.diff`,
  dataManifest: (id: string) => `runs/${id}/data-manifest.json`,
  replicate: (id: string) => `runs/${id}/replicate.sh`,
  ckptDir: (id: string) => `runs/${id}/ckpt/`,
  ckptFile: (id: string, step: number, file: string) => `runs/${id}/ckpt/${step}/${file}`,
  attemptFile: (id: string, attempt: number | 'predict', file: string) => `runs/${id}/attempts/${attempt}/${file}`,
  /** the attempt whose runner last started on the unit: an older runner still alive stops writing */
  currentAttempt: (id: string) => `runs/${id}/attempts/current.json`,
  /** each mirrored attempt file's size and SHA-256, rewritten by the runner after every mirror */
  attemptManifest: (id: string, attempt: number | 'predict') => `runs/${id}/attempts/${attempt}/manifest.json`,
  output: (id: string, file: string) => `runs/${id}/outputs/${file}`,
  outputsDir: (id: string) => `runs/${id}/outputs/`,
  /** written after every output: its presence means the outputs are complete */
  outputsManifest: (id: string) => `runs/${id}/outputs.manifest.json`,
  /** an empty marker per run under its digest, so another machine finds runs by pins */
  digestIndex: (digest: string, id?: string) => `index/digests/${digest}/${id ?? ''}`,
  submission: (id: string, stamp: string, file: string) => `runs/${id}/submissions/${stamp}/${file}`,
};
