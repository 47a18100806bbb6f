// What the supervisor is given and what it tells: the clock it runs on, the journal it records
// into, its options and its events. Owners (a verb in the foreground, the agent, the dashboard)
// and tests program against these.
import type { Backend } from '../backends/backend.js';
import { sleepUnless } from '../sleep-unless.js';
import type { BackendName } from '../config/define-config.js';
import type { LedgerFields } from '../ledger/format.js';
import type { AttemptSpec, AttemptState, RunnerEvent } from '../runner/attempt-spec.js';
import type { RunRecord } from './run-record.js';

export interface Clock {
  now(): number;
  /** resolves after `ms`, or early when `signal` aborts */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: sleepUnless,
};

/** Where the supervisor keeps what happens: the run record, the ledger, the home store. */
export interface Journal {
  save(run: RunRecord): Promise<void>;
  record<T extends string>(type: T, fields: LedgerFields<T>): Promise<void>;
  /** the committed checkpoint steps of a unit in this machine's store, ascending */
  storedSteps(unitKey: string): Promise<number[]>;
  /** removes a step from this machine's store (one a worker pruned where it runs) */
  dropStep(unitKey: string, step: number): Promise<void>;
  /** makes `attempt` the unit's current one: a runner of an earlier attempt still alive stops writing */
  claim(unitKey: string, attempt: number): Promise<void>;
  /** records a claimed attempt's files in the store as they are (its runner may have died between a file and the manifest) */
  sealAttemptFiles(unitKey: string, attempt: number): Promise<void>;
  /** the attempt's runner events as last copied to the store with its checkpoints (null: a damaged line) */
  storedEvents(unitKey: string, attempt: number): Promise<(RunnerEvent | null)[]>;
  /** of these attempts, which have their start (or a later attempt's) in the ledger: one read of it for all */
  startsRecorded(runId: string, attempts: readonly { unitKey: string; attempt: number }[]): Promise<boolean[]>;
  /** steps the ledger has live from these attempts of the unit that this machine's store lacks */
  lostSteps(runId: string, unitKey: string, attempts: readonly number[]): Promise<{ step: number; attempt: number }[]>;
}

export type SupervisorEvent =
  | { type: 'placed'; backend: string; capacity: number; units: { unit: number; slot: string }[]; reattached: { unit: number; slot: string; attempt: number }[] }
  | { type: 'prepared'; backend: string; slot: string; outcome: string | Error; ms: number }
  | { type: 'started'; unit: number; attempt: number; backend: string; slot: string }
  | { type: 'restored'; unit: number; attempt: number; step: number | null }
  | { type: 'notice'; unit: number; line: string }
  | { type: 'ended'; unit: number; attempt: number; slot: string; state: AttemptState; reason: string | null; ms: number }
  | { type: 'slot-down'; backend: string; slot: string; reason: string }
  | { type: 'slot-refused'; backend: string; slot: string; reason: string }
  | { type: 'moved'; unit: number; from: string; to: string; resumeStep: number | null }
  | { type: 'retrying'; unit: number; after: { attempt: number; state: AttemptState; reason: string | null }; next: { attempt: number; backend: string; slot: string } }
  | { type: 'waiting'; unit: number; why: string }
  | { type: 'gave-up'; unit: number; attempts: number }
  /** once a loop: where every unit stands */
  | { type: 'tick'; units: UnitView[] };

export interface SupervisorOptions {
  run: RunRecord;
  /** where unplaced units go: the launch's backend */
  backend: Backend;
  /** a backend by name: the one an attempt ran on (to re-attach), or the next of the run's order */
  openBackend: (name: BackendName) => Promise<Backend>;
  journal: Journal;
  specFor: (unit: number, attempt: number) => AttemptSpec;
  /** attempts per unit in this launch */
  maxAttempts: number;
  /**
   * launch only these units, finished or not (a retry); default every unfinished unit. Following
   * (follow()), only these are followed and stopped.
   */
  only?: number[];
  /** the slot the selected units start on (a retry's host=) */
  slot?: string;
  /** move the units of a lost slot elsewhere (default true) */
  requeue?: boolean;
  /**
   * an attempt that ended before this launch saw it goes on only as one seen ending would
   * (the agent: a failure or a cancel is not resumed by a re-attach); default: anything but a success
   */
  inheritedAsOwn?: boolean;
  /**
   * Asked after this process was silent for several ticks (stopped, a laptop asleep), before
   * it acts again: false when another process took the run over meanwhile, and this one detaches.
   */
  stillOwner?: () => Promise<boolean>;
  /** A stop another process asked for (make stop), and how: looked for once a tick and before queued units start. */
  stopRequest?: () => { force?: boolean } | null;
  sink?: (e: SupervisorEvent) => void;
  clock?: Clock;
  tickMs?: number;
}

/** A snapshot of one unit for displays. */
export interface UnitView {
  unit: number;
  backend: string;
  slot: string | null;
  state: string;
  attempt: number | null;
  step: unknown;
  ckpt: number | null;
  started_at: string | null;
  ended_at: string | null;
  last_line: string | null;
  metrics: Record<string, unknown> | null;
}
