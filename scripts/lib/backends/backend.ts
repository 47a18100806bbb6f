// The one interface every place of execution implements, for the supervisor (runs/supervisor.ts).
// Two kinds: a *placer* (the laptop, ssh hosts) offers slots and the supervisor picks one for
// each unit; a *scheduler* (SLURM, Batch) takes many units at once and places them itself. A
// Handle is plain JSON kept in the run record, so a later process can re-attach to an attempt it
// did not start; each backend parses its own handles with zod.
import type { BackendName } from '../config/define-config.js';
import type { AttemptSpec, AttemptState, RunnerEvent } from '../runner/attempt-spec.js';
import type { ExperimentSpec } from '../spec/experiment.js';
import { UserError } from '../ui/errors.js';

export type Handle = { backend: BackendName } & Record<string, unknown>;

/** A submit refused because an earlier attempt of the same unit still runs where it would start. */
export class EarlierAttemptRunning extends UserError {}

export interface PollResult {
  /** pending (with the scheduler's reason), running, or how the attempt ended */
  state: AttemptState;
  reason: string | null;
  exit_code: number | null;
  /**
   * the runner's event lines after the `eventsFrom` the poll was asked for, in order: one entry
   * per complete line (null where a line does not parse), so the count is the new cursor
   */
  events: (RunnerEvent | null)[];
  /** the latest metrics line, for live status */
  metrics: Record<string, unknown> | null;
  /** the last line the experiment printed, where the backend can tell cheaply */
  last_line: string | null;
  /**
   * the worker could not be asked (its host or cluster did not answer): the state says nothing
   * then, and the supervisor waits the slot's lost-after time before it calls the attempt lost
   */
  unanswered: boolean;
}

/** The result of a poll that reached no one. */
export function unanswered(reason: string): PollResult {
  return { state: 'lost', reason, exit_code: null, events: [], metrics: null, last_line: null, unanswered: true };
}

export interface PollRequest {
  handle: Handle;
  /** runner event lines already read: the poll returns those after */
  eventsFrom: number;
}

/** What a backend offers, checked against a spec's `resources` before a run is opened. */
export interface Capabilities {
  /** GPUs one attempt can have (0: none) */
  gpus: number;
  /** spot / preemptible capacity */
  spot: boolean;
  /** a sharded spec runs as one unit per shard (else as one unit covering every shard) */
  shards: boolean;
}

/** Somewhere attempts can go: a host (capacity: how many at once) or a scheduler's queue. */
export interface Slot {
  name: string;
  capacity: number;
}

/** What Backend.logs reads: which stream, whether to follow it, and what ends a follow early. */
export interface BackendLogsOptions {
  follow: boolean;
  stream?: 'stdout' | 'stderr';
  /** aborted: the follow returns at once and closes what it holds */
  signal?: AbortSignal;
}

export interface Submission {
  spec: AttemptSpec;
  /** the slot a placer runs it on; schedulers ignore it */
  slot: string;
}

export interface Backend {
  readonly name: BackendName;
  /** how it reads in messages: `local`, `ssh vast`, `fleet lab` */
  readonly title: string;
  readonly kind: 'placer' | 'scheduler';
  readonly capabilities: Capabilities;
  /** attempts run inside this process and end with it (the laptop): the orchestrator owns them */
  readonly attemptsInProcess: boolean;
  /** workers write the project's store themselves; false: their checkpoints are copied home */
  readonly workersReachStore: boolean;
  slots(): Slot[];
  /** how long a slot may go unanswered before its attempts are lost */
  lostAfterMs(slot: string): number;
  /** the slot an attempt runs on: one pollMany call per slot and tick */
  slotOf(handle: Handle): string;
  /**
   * Makes slots ready (code, runner); each outcome is reported as it lands (a short detail, or
   * the error) and returned. Idempotent and cheap once done.
   */
  prepare(slots: readonly string[], report?: (slot: string, outcome: string | Error, ms: number) => void): Promise<Map<string, Error | null>>;
  /**
   * Starts attempts; idempotent per (run, unit, attempt). Placers take submissions of one slot
   * and answer each on its own (a handle, or why that one could not start); a throw means none did.
   * A scheduler names a submission by all its attempts: the supervisor sends an attempt again
   * only with the same attempts, in the same order (the group it recorded before the first send).
   */
  submitMany(subs: readonly Submission[]): Promise<(Handle | Error)[]>;
  /**
   * The attempts a submit may have started, looked for where they would run, starting nothing: a
   * handle for each that was started (as its submit would have answered), null for each that was
   * not. For submits whose answer was lost (the call failed or timed out, or its process died
   * before it saved the handle), so that a stop reaches what they started. Submissions as
   * submitMany took them: of one slot, and a scheduler's one recorded group, in its order.
   * Throws when the slot cannot be asked.
   */
  findSubmitted(subs: readonly Submission[]): Promise<(Handle | null)[]>;
  /** One round trip per slot: every request must be of the same slot. */
  pollMany(reqs: readonly PollRequest[]): Promise<PollResult[]>;
  /** Resolves when an attempt may have changed state, after `ms` at the latest, or at once when `signal` aborts. */
  waitForChange?(ms: number, signal?: AbortSignal): Promise<void>;
  /** Asks an attempt to checkpoint and stop; `force` kills it now; `preempt` ends it preempted. */
  cancel(handle: Handle, opts?: { force?: boolean; preempt?: boolean }): Promise<void>;
  /**
   * An attempt's output: whole, or followed as it grows until the attempt ends. A follow ends at
   * once, its channel, timer or file closed, when `signal` aborts (a generator's return() waits
   * for its next yield, which a quiet log may never reach).
   */
  logs(handle: Handle, opts: BackendLogsOptions): AsyncIterable<string>;
  /**
   * An attempt's file as it is now where the attempt runs (metrics.jsonl grows there between the
   * checkpoints that copy it to the store); null when it is not there. Absent: only the store has it.
   */
  readAttemptFile?(handle: Handle, name: 'metrics.jsonl'): Promise<Buffer | null>;
  /** Brings an attempt's checkpoints, outputs and files home to the store (nothing when its worker wrote there). */
  pull(handle: Handle): Promise<void>;
  /** Gives a slot the committed checkpoints this machine holds for a unit moved there. */
  pushCheckpoints(slot: string, unitKey: string): Promise<void>;
  /** Refuses, before a run opens, a spec this backend's configuration cannot run (one line). */
  checkSpec?(file: string, spec: ExperimentSpec): void;
  /** Whether the slot answers right now. */
  reachable(slot: string): Promise<boolean>;
}
