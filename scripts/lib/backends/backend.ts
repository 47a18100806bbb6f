// The one interface every place of execution implements. A Handle is plain JSON kept in the
// run state, so a restarted orchestrator can re-attach to an attempt it did not start.
import type { BackendName } from '../config/define-config.js';
import type { AttemptSpec, RunnerEvent } from '../runner/attempt-spec.js';
import type { AttemptState, Handle } from '../runs/run-record.js';
import { UserError } from '../ui/errors.js';

/** A submit refused because an earlier attempt of the same unit still runs where it would start. */
export class EarlierAttemptRunning extends UserError {}

export interface PollResult {
  state: AttemptState;
  reason: string | null;
  exit_code: number | null;
  restored_step: number | null;
  last_step: number | null;
  /** the latest metrics line, for live status */
  metrics: Record<string, unknown> | null;
  /** every runner event of the attempt so far, in order (callers keep a cursor) */
  events: RunnerEvent[];
  /** the last line the experiment printed, where the backend can tell cheaply */
  last_line?: string | null;
  /**
   * true when the worker could not be asked (its host did not answer): `lost` then means
   * "unknown right now", not "gone", and a supervisor that can wait out a blip does
   */
  unanswered?: boolean;
}

/** What a backend can do; a spec asking for more fails before anything launches. */
export interface Capabilities {
  gpus: boolean;
  spot: boolean;
  shards: boolean;
  multiNode: boolean;
}

export interface Backend {
  readonly name: BackendName;
  readonly capabilities: Capabilities;
  /**
   * Gets the place ready for attempts (host reached, its key verified, project pushed), or fails
   * saying why; run before a new run is created, so a refusal leaves no run behind. Absent:
   * nothing to check.
   */
  ready?(): Promise<void>;
  /** Starts the runner for one attempt; idempotent per (run_id, attempt). */
  submit(spec: AttemptSpec): Promise<Handle>;
  poll(handle: Handle): Promise<PollResult>;
  /** Resolves when the attempt may have changed state, or after `ms` at the latest. */
  waitForChange?(handle: Handle, ms: number): Promise<void>;
  /** Asks the attempt to checkpoint and stop (SIGTERM, then SIGKILL after the grace); `force` kills now. */
  cancel(handle: Handle, opts?: { force?: boolean }): Promise<void>;
  logs(handle: Handle, opts: { follow: boolean; stream?: 'stdout' | 'stderr' }): AsyncIterable<string>;
  /** Brings the attempt's outputs, logs and metrics home to the store. */
  pull(handle: Handle): Promise<void>;
}
