// A unit as the supervisor keeps it while it drives a run: its record, where it runs, what
// phase it is in, and its live attempt (events read, steps committed, the copy home in flight).
import type { Backend } from '../backends/backend.js';
import type { BackendName } from '../config/define-config.js';
import { sha256Hex } from '../hash.js';
import type { LedgerFields } from '../ledger/format.js';
import type { RunnerEvent } from '../runner/attempt-spec.js';
import type { AttemptRecord, UnitRecord } from './run-record.js';
import type { SupervisorEvent, UnitView } from './supervision.js';

/** `finding`: stopping, its attempt is looked for where its submit went (it may run there). */
export type Phase = 'idle' | 'queued' | 'submitting' | 'finding' | 'live' | 'done';

export interface Live {
  attempt: AttemptRecord;
  /** event lines read from the worker so far (a re-attached attempt starts past those recorded) */
  eventsRead: number;
  /** its background work here, one task after another: copies of its checkpoints home, dropping pruned steps */
  work: Promise<void>;
  /** a copy home is queued or running */
  pulling: boolean;
  /** started before this launch, and not yet seen by it: an end found at once happened before it */
  inherited: boolean;
}

export interface Unit {
  rec: UnitRecord;
  backend: Backend;
  slot: string;
  phase: Phase;
  live: Live | null;
  /** the attempt number past which it gives up in this launch */
  limit: number;
  /** a slot it moved from: its checkpoints are pushed to the new slot before it starts there */
  pushFrom: string | null;
  lastLine: string | null;
  /** its slot did not answer the last poll */
  silent: boolean;
  metrics: Record<string, unknown> | null;
  /** its next attempt starts no earlier than this (clock ms): the backoff after an end */
  notBefore: number;
  /** its queued attempt was queued by an orchestrator that died: the ledger may have its start already */
  queuedEarlier: boolean;
}

export function unitView(u: Unit): UnitView {
  const last = u.rec.attempts.at(-1);
  const state = u.phase === 'queued' || u.phase === 'finding' ? 'queued' : u.phase === 'submitting' ? 'starting' : u.phase === 'live' && u.silent ? 'unreachable' : (last?.state ?? 'created');
  return {
    unit: u.rec.index,
    backend: u.backend.name,
    slot: u.slot || (last?.handle ? u.backend.slotOf(last.handle) : null),
    state,
    attempt: last?.n ?? null,
    step: u.metrics?.step ?? null,
    ckpt: last?.last_step ?? null,
    started_at: last?.started_at ?? null,
    ended_at: last?.ended_at ?? null,
    last_line: u.lastLine,
    metrics: u.metrics,
  };
}

/** The record of an attempt about to be submitted to a slot (in a scheduler's `group`): kept before the backend is asked. */
export function queuedAttempt(n: number, backend: BackendName, slot: string, group?: string): AttemptRecord {
  const a: AttemptRecord = { n, backend, handle: null, slot, state: 'queued', reason: null, exit_code: null, started_at: new Date().toISOString(), ended_at: null, restored_step: null, last_step: null, events_seen: 0 };
  return group === undefined ? a : { ...a, group };
}

/** The name of the group of attempts submitted together: their units and numbers, hashed (an attempt is in one group only). */
export function groupKey(members: readonly { unit: number; n: number }[]): string {
  return sha256Hex(members.map((m) => `${m.unit} ${m.n}`).join('\n')).slice(0, 12);
}

export interface EventContext {
  unit: number;
  /** the ledger fields naming the unit */
  tag: { run_id: string; shard?: number };
  record: <T extends string>(type: T, fields: LedgerFields<T>) => Promise<void>;
  emit: (e: SupervisorEvent) => void;
}

/**
 * Takes a poll's runner event lines into a live attempt: every line counts (a damaged one too),
 * and the ledger gets the lines past those an earlier orchestrator recorded. Says whether the
 * record must be saved now (a ledger entry was written, or a checkpoint restored: a restarted
 * orchestrator must not record an entry twice, and make status shows the restore), whether a
 * step was committed, and which steps were pruned. Lines read past that (a notice, a fresh
 * start) are saved with the next change: read again after a crash, they record nothing.
 */
export async function takeEvents(live: Live, events: (RunnerEvent | null)[], ctx: EventContext): Promise<{ save: boolean; committed: boolean; pruned: number[] }> {
  const { attempt } = live;
  let committed = false;
  let save = false;
  const pruned: number[] = [];
  const first = live.eventsRead;
  live.eventsRead += events.length;
  for (const [i, e] of events.entries()) {
    if (!e || first + i < attempt.events_seen) continue; // damaged, or recorded by an earlier orchestrator
    if (e.type === 'ckpt.committed') {
      attempt.last_step = e.step;
      committed = save = true;
      await ctx.record('ckpt.committed', { ...ctx.tag, step: e.step, manifest: e.manifest, manifest_sha256: e.manifest_sha256 });
    } else if (e.type === 'ckpt.pruned') {
      await ctx.record('ckpt.pruned', { ...ctx.tag, step: e.step });
      pruned.push(e.step);
      save = true;
    } else if (e.type === 'outputs.saved') {
      await ctx.record('outputs.saved', { ...ctx.tag, files: e.files });
      save = true;
    } else if (e.type === 'restored') {
      attempt.restored_step = e.step;
      save ||= e.step !== null;
      ctx.emit({ type: 'restored', unit: ctx.unit, attempt: attempt.n, step: e.step });
    } else if (e.type === 'notice') {
      ctx.emit({ type: 'notice', unit: ctx.unit, line: e.line });
    }
  }
  attempt.events_seen = Math.max(attempt.events_seen, live.eventsRead);
  return { save, committed, pruned };
}
