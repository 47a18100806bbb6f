// What a backend ships to its worker: everything the runner needs, as plain JSON.
import type { S3Config } from '../config/load-config.js';
import type { CommandSpec } from '../spec/experiment.js';

export interface AttemptSpec {
  run_id: string;
  /**
   * The name this attempt's checkpoints, outputs and attempt files live under in the store
   * (`runs/<unit_id>/...`): the run id, or `<run_id>/shards/<i>` for one shard of a fleet search.
   */
  unit_id: string;
  /** the run's pins digest (SWITCHYARD_PINS_DIGEST: shard files carry it) */
  pins_digest: string;
  /** 1, 2, ... for training attempts; "predict" for the prediction phase */
  attempt: number | 'predict';
  /**
   * how often the scheduler has rerun this attempt itself (Batch's BATCH_TASK_RETRY_ATTEMPT after a
   * VM failure); a rerun continues the attempt's files in the store (runner/attempt-rerun.ts)
   */
  rerun?: number;
  command: CommandSpec;
  /** run before the command in every attempt (installs, downloads); must be idempotent */
  setup: CommandSpec | null;
  /** the competition folder, relative to the repo root: SWITCHYARD_CODE_DIR and the default working folder */
  cwd: string;
  /** the command's and setup's working folders as the spec gives them (relative to `cwd`, or `$data[/<sub>]`); null: `cwd` */
  command_cwd: string | null;
  setup_cwd: string | null;
  /** the data folder, relative to the repo root (or absolute), or null */
  data_dir: string | null;
  /**
   * the run's data pin: the runner stages exactly its files from `data_dir`, read-only, as
   * SWITCHYARD_DATA_DIR; `cache` is the pin's stat cache, relative to the project root
   */
  data_pin: { root: string; include: string[]; exclude: string[]; cache: string | null } | null;
  /** `train.metrics_from`: output lines it matches become metrics lines */
  metrics_from: string | null;
  env: Record<string, string>;
  /** names of the secrets the experiment declares; their values come from `secrets_file` */
  secrets: string[];
  /** the worker's secrets file, relative to the project root: `.env` here, the JSON file bootstrap pushed on a host (never copied into the spec) */
  secrets_file: string | null;
  /** a Python virtual environment to run in (relative to the project root), if it exists there */
  venv: string | null;
  seed: number;
  ckpt_every_sec: number;
  grace_sec: number;
  /** past this the runner checkpoints and stops the attempt, which ends `timeout` (absent: no limit) */
  time_limit_sec?: number | null;
  keep_checkpoints: number;
  shard_index: number;
  shard_count: number;
  store: string;
  /** endpoint, region and path style of an s3:// store; credentials come from the worker's secrets file or environment */
  store_s3: S3Config | null;
}

/**
 * queued: recorded, not yet submitted; pending: submitted, waiting for the scheduler (with its
 * reason); running; then how it ended. preempted, lost and timeout (with a checkpoint) resume.
 */
export const ATTEMPT_STATES = ['queued', 'pending', 'running', 'succeeded', 'failed', 'preempted', 'lost', 'timeout', 'cancelled'] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];
export const TERMINAL: ReadonlySet<AttemptState> = new Set(['succeeded', 'failed', 'preempted', 'lost', 'timeout', 'cancelled']);

export interface AttemptStatus {
  run_id: string;
  attempt: number | 'predict';
  state: AttemptState;
  reason: string | null;
  exit_code: number | null;
  signal: string | null;
  pid: number;
  started_at: string;
  ended_at: string | null;
  restored_step: number | null;
  last_step: number | null;
}

export type RunnerEvent =
  /** `attempt` is absent in events of runners older than the field */
  | { type: 'restored'; step: number | null; attempt?: number | 'predict' }
  | { type: 'notice'; line: string }
  | { type: 'ckpt.committed'; step: number; manifest: string; manifest_sha256: string }
  | { type: 'ckpt.pruned'; step: number }
  | { type: 'outputs.saved'; files: { path: string; sha256: string }[] };

/** Files of an attempt folder on the worker, mirrored to runs/<id>/attempts/<n>/ in the store. */
export const ATTEMPT_FILES = ['stdout.log', 'stderr.log', 'metrics.jsonl', 'events.jsonl', 'status.json'] as const;
/** One RunnerEvent per line, appended as they happen: how any orchestrator, local or remote, learns them. */
export const EVENTS_FILE = 'events.jsonl';
export const STOP_REQUEST = 'stop-request';
/** What a poll shows of a running attempt, kept by its runner (attempt-live.ts); never mirrored. */
export const LIVE_FILE = 'live.json';
