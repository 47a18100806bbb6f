// The supervisor: owns the lifecycle of every unit of a run on every backend. It places units
// on slots (placers) or hands them to a scheduler, submits, polls each slot in one round trip
// per tick, records runner events and attempt ends, keeps the attempt budget, copies
// checkpoints home where workers cannot reach the store, declares a slot lost after its
// lost-after time, moves its units to healthy slots or to the next backend of the run's order,
// and records what could not be saved (ckpt.lost). The foreground `make train`, a fleet search
// and a background agent are this one loop with different owners.
//
// Polls and submits run concurrently per slot and report to an inbox the loop drains in order,
// so one slow or dead host never holds up what happens on the others, and every record and
// ledger write happens in one place, one at a time.
import type { LedgerFields } from '../ledger/format.js';
import { Slots, type SlotState } from './slots.js';
import { groupKey, queuedAttempt, takeEvents, unitView, type EventContext, type Live, type Unit } from './units.js';
import { systemClock, type Clock, type SupervisorEvent, type SupervisorOptions, type UnitView } from './supervision.js';
import { faultPoint, isDiskProblem, UserError } from '../ui/errors.js';
import { EarlierAttemptRunning, unanswered, type Backend, type Handle, type PollResult } from '../backends/backend.js';
import { endsInARow, fitsResources, resumes, retryDelayMs } from './failover.js';
import { allAttempts, isLiveAttempt, TERMINAL, type AttemptRecord, type AttemptState, type RunRecord, markStopped, unitKey } from './run-record.js';
import { mapLimit } from '../map-limit.js';
import { CUT_SHORT } from '../sleep-unless.js';

type Message =
  | { kind: 'polled'; slot: SlotState; units: Unit[]; attempts: AttemptRecord[]; startedAt: number; results: PollResult[] }
  | { kind: 'submitted'; slot: SlotState; units: Unit[]; startedAt: number; outcomes: (Handle | Error)[]; reachable: boolean }
  | { kind: 'found'; slot: SlotState; units: Unit[]; found: (Handle | null)[] | Error };

/** An attempt seen ending, from its end being taken to its record being saved and its end recorded. */
interface Ending {
  u: Unit;
  live: Live;
  poll: PollResult;
  /** copy its files home first */
  pull: boolean;
  /** it ended before this launch saw it */
  inherited: boolean;
}

/** What must wait for the record's save: a start's event, an end's ledger entry. */
type AfterSave = () => Promise<void>;

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
const NOTHING_TAKEN = { save: false, committed: false, pruned: [] as number[] } as const;
/**
 * Slots whose ended attempts are copied home at once. A slot's go one after another: each is
 * an rsync with an ssh login of its own, and sshd refuses logins past ten at a time (MaxStartups).
 */
const SLOTS_PULLED_AT_ONCE = 8;

/** A queued attempt whose submit went to another slot than `s` (its unit moved since): it may run there. */
const sentElsewhere = (a: AttemptRecord | undefined, s: SlotState): a is AttemptRecord => a?.state === 'queued' && a.slot !== undefined && (a.slot !== s.name || a.backend !== s.backend.name);

/**
 * A queued unit whose recorded attempt was sent to the slot it is on, and whose submit's answer
 * was not saved (the call failed, or its process died first): it may run there.
 */
function maybeSent(u: Unit): boolean {
  const pending = u.rec.attempts.at(-1);
  return pending?.state === 'queued' && pending.slot === u.slot && pending.backend === u.backend.name;
}

/** The number a queued unit's attempt goes under: the one recorded queued, else the next. */
function nextAttempt(u: Unit): number {
  const pending = u.rec.attempts.at(-1);
  return pending?.state === 'queued' ? pending.n : u.rec.attempts.length + 1;
}

/** The group a unit's queued attempt was recorded in (a scheduler's submission that may have reached it). */
function groupOf(u: Unit): string | undefined {
  const pending = u.rec.attempts.at(-1);
  return pending?.state === 'queued' ? pending.group : undefined;
}

/**
 * The first group of these queued units (brokenGroups gave up any not all here): sent again
 * whole, alone and in the order it went in (the units' own), so the scheduler names it as before
 * and finds what it made; ahead of new units and whatever the slot's capacity now, as it may run
 * already.
 */
function queuedGroup(queued: Unit[]): Unit[] | null {
  const group = queued.map(groupOf).find((g) => g !== undefined);
  return group === undefined ? null : queued.filter((u) => groupOf(u) === group);
}

export class Supervisor {
  private readonly units: Unit[] = [];
  private readonly slots = new Slots();
  private readonly inbox: Message[] = [];
  private readonly clock: Clock;
  private readonly tickMs: number;
  private wake = new AbortController();
  private stopping = false;
  /** what stop() was asked, kept for units placed after it (a stop that came before drive()) */
  private stopAsked: { force?: boolean; preempt?: boolean } | null = null;
  private detached = false;
  /** why attempts stopped by shutdown() ended, for their records */
  private stopReason: string | null = null;
  /** the loop while it runs (one at a time) */
  private looping: Promise<void> | null = null;
  /** when lost slots were last looked for: a long gap means this process slept */
  private checkedAt: number | null = null;
  /** when the loop last went on: a long gap means this process slept, and may have been replaced */
  private awakeAt: number | null = null;
  /** the record changed: saved within a tick (a checkpoint, a state), or before what follows (a start, an end) */
  private unsaved = false;
  /** when the record was last saved */
  private savedAt = Number.NEGATIVE_INFINITY;
  /** when the last view of every unit went to the listener, and how many units each phase had then */
  private tickedAt = Number.NEGATIVE_INFINITY;
  private tickedPhases = '';
  /** when a stop asked from another process was last looked for */
  private stopLookedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: SupervisorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.tickMs = opts.tickMs ?? 1000;
  }

  private get run(): RunRecord {
    return this.opts.run;
  }

  private emit(e: SupervisorEvent): void {
    this.opts.sink?.(e);
  }

  /**
   * Saves the run's record; false, saving nothing, when it is no longer this process's. A process
   * stopped mid-step (SIGSTOP, a laptop asleep) wakes with a view of the run as it was.
   */
  private async save(): Promise<boolean> {
    if (!(await this.stillOwner())) return false;
    this.unsaved = false;
    this.savedAt = this.clock.now();
    await this.opts.journal.save(this.run);
    return true;
  }

  private record<T extends string>(type: T, fields: LedgerFields<T>): Promise<void> {
    return this.opts.journal.record(type, fields);
  }

  /** The ledger fields that name a unit: a sharded run's entries carry the shard. */
  private tag(u: Unit): { run_id: string; shard?: number } {
    return this.run.sharded ? { run_id: this.run.run_id, shard: u.rec.index } : { run_id: this.run.run_id };
  }

  private eventContext(u: Unit): EventContext {
    return { unit: u.rec.index, tag: this.tag(u), record: (t, f) => this.record(t, f), emit: (e) => this.emit(e) };
  }

  /**
   * Stops every live attempt (checkpoint, then stop; `force`: kill now) and starts nothing more.
   * An attempt whose submit may have started it is looked for first, and stopped if found.
   */
  stop(opts: { force?: boolean; preempt?: boolean } = {}): void {
    this.stopping = true;
    this.stopAsked = opts;
    const unsure: Unit[] = [];
    for (const u of this.units) {
      if (u.phase === 'queued') {
        if (maybeSent(u)) unsure.push(u);
        else u.phase = 'done';
      }
      if (u.live?.attempt.handle) this.askToStop(u, u.live.attempt.handle);
    }
    this.findSent(unsure);
    this.poke();
  }

  private askToStop(u: Unit, handle: Handle): void {
    u.backend.cancel(handle, this.stopAsked ?? {}).catch((err: unknown) => this.emit({ type: 'notice', unit: u.rec.index, line: `could not ask it to stop: ${firstLine(err)}` }));
  }

  /**
   * Looks for these units' attempts where their submits went, starting nothing (one call per
   * slot, and per group on a scheduler, which names a submission by all of its attempts, in
   * order): one found is followed as a live one, and asked to stop; one not found never started.
   */
  private findSent(units: Unit[]): void {
    const calls = new Map<string, { s: SlotState; units: Unit[] }>();
    for (const u of units) {
      const s = this.slots.get(u.backend, u.slot);
      const key = `${s.backend.name} ${s.name} ${groupOf(u) ?? u.rec.index}`;
      const call = calls.get(key);
      if (call) call.units.push(u);
      else calls.set(key, { s, units: [u] });
    }
    for (const { s, units: those } of calls.values()) {
      for (const u of those) u.phase = 'finding';
      const subs = those.map((u) => ({ spec: this.opts.specFor(u.rec.index, nextAttempt(u)), slot: s.name }));
      void s.backend
        .findSubmitted(subs)
        .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
        .then((found) => this.post({ kind: 'found', slot: s, units: those, found }));
    }
  }

  /** Whether another process asked this one to stop the run (make stop): if so, stops as asked. */
  private stopRequested(): boolean {
    if (this.stopping || !this.opts.stopRequest) return false;
    this.stopLookedAt = this.clock.now();
    const asked = this.opts.stopRequest();
    if (!asked) return false;
    this.stop(asked);
    // Recorded here, as make stop records its own: it cannot while this process holds the run.
    if (markStopped(this.run, new Date(this.clock.now()).toISOString())) this.unsaved = true;
    return true;
  }

  get isDetached(): boolean {
    return this.detached;
  }

  /** Leaves live attempts running where they are and returns from drive() at once. */
  detach(): void {
    this.detached = true;
    this.poke();
  }

  private poke(): void {
    if (!this.wake.signal.aborted) this.wake.abort(CUT_SHORT);
  }

  /** Drives the run's units to their end (or until detached). */
  async drive(): Promise<void> {
    // Driven again after a stop: the units it cut off before they started wait to start now.
    delete this.run.stopped_at;
    await this.place();
    await this.prepareFirst();
    await this.loop();
  }

  /**
   * Follows what runs already, recording what ends, and starts nothing: `stop` first asks every
   * live attempt to checkpoint and stop and waits for them to end; otherwise one poll of each.
   */
  async follow(opts: { stop?: { force?: boolean } } = {}): Promise<void> {
    await this.place({ reattachOnly: true });
    if (opts.stop) {
      this.stop(opts.stop);
      return this.loop();
    }
    this.stopping = true; // record ends, start nothing
    this.pollLive();
    while (this.units.some((u) => u.phase === 'live' && this.slots.get(u.backend, u.slot).polling !== null)) {
      await this.nap();
      await this.drain();
    }
    await this.saveLeftovers();
  }

  /**
   * After a failure in the owner: every live attempt checkpoints and stops and its end is
   * recorded, within `ms` (past it, they are left to a later make train).
   */
  async shutdown(ms: number, why: string): Promise<void> {
    this.stopReason = why;
    this.stop();
    const timer = setTimeout(() => this.detach(), ms);
    try {
      await (this.looping ?? this.loop());
    } finally {
      clearTimeout(timer);
    }
  }

  private loop(): Promise<void> {
    this.looping ??= this.runLoop().finally(() => (this.looping = null));
    return this.looping;
  }

  private async runLoop(): Promise<void> {
    while (!this.detached) {
      if (!(await this.stillOwner())) break;
      if (this.clock.now() - this.stopLookedAt >= this.tickMs) this.stopRequested();
      await this.startQueued();
      this.pollLive();
      await this.drain();
      await this.checkLost();
      this.tick();
      if (this.finished()) break;
      await this.nap();
      if (!(await this.stillOwner())) break;
      await this.drain();
    }
    await this.saveLeftovers();
  }

  /**
   * A view of every unit for the listener: once a tick, and at once when units changed phase
   * (queued, starting, running, ended, unreachable). The loop goes round once per message, so a
   * view each round would be, with a hundred hosts answering through a tick, a hundred views of
   * every unit a tick.
   */
  private tick(): void {
    if (!this.opts.sink) return;
    const now = this.clock.now();
    const phases = this.phaseCounts();
    if (now - this.tickedAt < this.tickMs && phases === this.tickedPhases) return;
    [this.tickedAt, this.tickedPhases] = [now, phases];
    this.emit({ type: 'tick', units: this.view() });
  }

  private phaseCounts(): string {
    const counts = { queued: 0, submitting: 0, live: 0, silent: 0 };
    for (const u of this.units) {
      if (u.phase === 'live' && u.silent) counts.silent++;
      else if (u.phase === 'queued' || u.phase === 'submitting' || u.phase === 'live') counts[u.phase]++;
    }
    return `${counts.queued} ${counts.submitting} ${counts.live} ${counts.silent}`;
  }

  /**
   * What the polls changed since the last save, at the end of a loop that finished. A loop that
   * detached leaves it: the run is another's now (an agent, or a process that took it over), and a
   * restart reads the events on from the last save (see drain).
   */
  private async saveLeftovers(): Promise<void> {
    if (this.unsaved && !this.detached) await this.save();
  }

  /** After a gap of several ticks: whether the run is still this process's to drive; detaches when not. */
  private async stillOwner(): Promise<boolean> {
    const now = this.clock.now();
    const slept = this.awakeAt !== null && now - this.awakeAt > 5 * this.tickMs;
    this.awakeAt = now;
    if (!slept || !this.opts.stillOwner || (await this.opts.stillOwner().catch(() => true))) return true;
    this.detached = true;
    return false;
  }

  /** Sleeps until the next tick, a message, or a backend's own change signal. */
  private async nap(): Promise<void> {
    if (this.inbox.length || this.detached) return;
    this.wake = new AbortController();
    const backends = [...new Set(this.units.filter((u) => u.phase === 'live' && u.backend.waitForChange).map((u) => u.backend))];
    const waits = [this.clock.sleep(this.tickMs, this.wake.signal), ...backends.map((b) => b.waitForChange!(this.tickMs, this.wake.signal))];
    const changed = await Promise.race(waits.map((w, i) => w.then(() => i)));
    this.wake.abort(CUT_SHORT); // ends the waits that lost the race: a pending timer would hold the process open
    if (changed > 0) {
      const backend = backends[changed - 1]!;
      for (const s of this.slots.all()) if (s.backend === backend) s.polledAt = -Infinity;
    }
  }

  private post(m: Message): void {
    this.inbox.push(m);
    this.poke();
  }

  /**
   * Takes every message that came in, then saves the record: at once when attempts started or
   * ended (what follows the save waits for it: a start's event, an end's ledger entry and what
   * comes next for its unit), else at most once a tick. A save writes the whole record (~60 ms
   * at 1,000 units): with a save per checkpoint, or per host's round of polls (each its own
   * drain as the answers trickle in), a big fleet's commits would outrun the orchestrator, and
   * 1,000 shards ending together would take a minute of saves. The ledger has each checkpoint
   * and start as it is taken: a restart reads the events on from the last save, so it records
   * again at most a tick's entries, which fold as the first did.
   */
  private async drain(): Promise<void> {
    const endings: Ending[] = [];
    const started: AfterSave[] = [];
    for (let m = this.inbox.shift(); m; m = this.inbox.shift()) {
      if (m.kind === 'polled') endings.push(...(await this.onPolled(m)));
      else if (m.kind === 'found') {
        const then = await this.onFound(m);
        if (then) started.push(then);
      } else {
        const then = await this.onSubmitted(m);
        if (then) started.push(then);
        if (!Slots.open(m.slot)) endings.push(...(await this.cameBackClosed(m.slot, m.units)));
      }
    }
    await this.endAll(endings, started);
  }

  // ---- placement ------------------------------------------------------------------------

  private async place(opts: { reattachOnly?: boolean } = {}): Promise<void> {
    const { run, backend, only } = this.opts;
    const names = backend.slots().map((s) => s.name);
    if (!names.length) throw new UserError(`backend ${backend.name}: no slots to run on`);
    if (this.opts.slot && !names.includes(this.opts.slot)) throw new UserError(`host: ${this.opts.slot} is not one of ${names.join(', ')}`);
    const placed: { unit: number; slot: string }[] = [];
    const reattached: { unit: number; slot: string; attempt: number }[] = [];
    for (const rec of run.units) {
      const last = rec.attempts.at(-1);
      const u: Unit = { rec, backend, slot: '', phase: 'idle', live: null, limit: rec.attempts.length + this.opts.maxAttempts, pushFrom: null, lastLine: null, silent: false, metrics: null, notBefore: 0, queuedEarlier: last?.state === 'queued' };
      this.units.push(u);
      // Following some units only (make stop shard=): the others are not this process's to touch.
      if (opts.reattachOnly && only && !only.includes(rec.index)) continue;
      if (isLiveAttempt(last) && last.handle) {
        // Running already (started by an orchestrator that died or detached): follow it where it is.
        u.backend = last.backend === backend.name ? backend : await this.opts.openBackend(last.backend);
        u.slot = u.backend.slotOf(last.handle);
        u.phase = 'live';
        u.live = { attempt: last, eventsRead: last.events_seen, work: Promise.resolve(), pulling: false, inherited: true };
        this.slots.get(u.backend, u.slot).prepared = true;
        reattached.push({ unit: rec.index, slot: u.slot, attempt: last.n });
        continue;
      }
      if (opts.reattachOnly) {
        // Where an attempt whose submit may have started it went: a stop looks for it there.
        const sentTo = await this.queuedOn(last);
        if (sentTo) [u.backend, u.slot, u.phase] = [sentTo.backend, sentTo.slot, 'queued'];
        continue;
      }
      const wanted = only ? only.includes(rec.index) : last?.state !== 'succeeded';
      if (!wanted) continue;
      const sentTo = this.opts.slot ? null : await this.queuedOn(last);
      if (sentTo) [u.backend, u.slot] = [sentTo.backend, sentTo.slot];
      else {
        const lastSlot = last?.handle && last.backend === backend.name ? backend.slotOf(last.handle) : null;
        u.slot = this.opts.slot ?? (lastSlot && names.includes(lastSlot) ? lastSlot : names[rec.index % names.length]!);
      }
      u.phase = 'queued';
      placed.push({ unit: rec.index, slot: u.slot });
    }
    this.emit({ type: 'placed', backend: backend.name, capacity: backend.slots()[0]!.capacity, units: placed, reattached });
    // Asked to stop before its units were known (the agent is asked as it opens a run): the
    // attempts found running are asked now, or they would run on unstopped.
    if (this.stopAsked) this.stop(this.stopAsked);
  }

  /**
   * Where an attempt left queued was submitted (its orchestrator died before it saved the
   * handle), while that slot is still offered: submitted there again, it is found, not started twice.
   */
  private async queuedOn(a: AttemptRecord | undefined): Promise<{ backend: Backend; slot: string } | null> {
    const slot = a?.state === 'queued' ? a.slot : undefined;
    if (!a || slot === undefined) return null;
    const { backend } = this.opts;
    const b = a.backend === backend.name ? backend : await this.opts.openBackend(a.backend).catch(() => null);
    return b?.slots().some((x) => x.name === slot) ? { backend: b, slot } : null;
  }

  /** Readies the first placed slots together, reporting each; a slot that fails takes no units. */
  private async prepareFirst(): Promise<void> {
    const { backend } = this.opts;
    const names = [...new Set(this.units.filter((u) => u.phase === 'queued' && u.backend === backend).map((u) => u.slot))];
    if (!names.length) return;
    const results = await backend.prepare(names, (slot, outcome, ms) => this.emit({ type: 'prepared', backend: backend.name, slot, outcome, ms }));
    const failed = names.filter((n) => results.get(n));
    if (failed.length === names.length) {
      const first = results.get(names[0]!)!;
      if (names.length === 1) throw first instanceof UserError ? first : new UserError(`${backend.title}: ${firstLine(first)}`);
      throw new UserError(`${backend.title}: no host could be prepared (${firstLine(first)})`);
    }
    for (const n of names) this.slots.get(backend, n).prepared = !results.get(n);
    for (const n of failed) await this.refuse(this.slots.get(backend, n), firstLine(results.get(n)));
  }

  // ---- starting ---------------------------------------------------------------------------

  private load(s: SlotState): number {
    return this.units.filter((u) => u.backend === s.backend && u.slot === s.name && (u.phase === 'live' || u.phase === 'submitting')).length;
  }

  private async startQueued(): Promise<void> {
    if (this.stopping || this.detached) return;
    const bySlot = new Map<SlotState, Unit[]>();
    const retired: Ending[] = [];
    for (const u of this.units) {
      if (u.phase !== 'queued' || this.clock.now() < u.notBefore) continue;
      const s = this.slots.get(u.backend, u.slot);
      if (!Slots.open(s) || s.submitting) continue;
      const pending = u.rec.attempts.at(-1);
      if (sentElsewhere(pending, s)) {
        retired.push(this.retire(u, pending, `its submit to ${pending.slot} may have started it there; the unit moved to ${u.slot}`));
        continue;
      }
      const units = bySlot.get(s);
      if (units) units.push(u);
      else bySlot.set(s, [u]);
    }
    for (const queued of bySlot.values()) retired.push(...this.brokenGroups(queued));
    // Their ends may close slots and move units (next): the next round starts what is queued then.
    if (retired.length) return this.endAll(retired);
    const batches: [SlotState, Unit[]][] = [];
    for (const [s, queued] of bySlot) {
      const batch = queuedGroup(queued) ?? this.newBatch(s, queued);
      if (batch.length) batches.push([s, batch]);
    }
    // A stop asked meanwhile (make stop) is looked for once more before any starts.
    if (!batches.length || this.stopRequested()) return;
    for (const [s, batch] of batches) this.recordQueued(s, batch);
    if (!(await this.save())) return; // taken over while this process slept: it submits nothing
    for (const [s, batch] of batches) {
      for (const u of batch) u.phase = 'submitting';
      this.submit(s, batch);
    }
  }

  /** Queued units sent nowhere yet, as many as their slot has room for; a unit past its budget gives up. */
  private newBatch(s: SlotState, queued: Unit[]): Unit[] {
    const capacity = s.backend.slots().find((x) => x.name === s.name)?.capacity ?? 1;
    const batch: Unit[] = [];
    for (const u of queued) {
      if (this.load(s) + batch.length >= capacity) break;
      if (nextAttempt(u) > u.limit) {
        u.phase = 'done';
        this.emit({ type: 'gave-up', unit: u.rec.index, attempts: this.opts.maxAttempts });
        continue;
      }
      batch.push(u);
    }
    return batch;
  }

  /**
   * Records a batch's attempts as queued on their slot before the backend is asked, so a crash in
   * between submits the same attempt numbers to the same slot again; a scheduler's as one group,
   * so they go again together, as the one submission the scheduler named by them.
   */
  private recordQueued(s: SlotState, batch: Unit[]): void {
    const group = s.backend.kind === 'scheduler' ? groupKey(batch.map((u) => ({ unit: u.rec.index, n: nextAttempt(u) }))) : undefined;
    for (const u of batch) {
      const pending = u.rec.attempts.at(-1);
      if (pending?.state !== 'queued') {
        u.rec.attempts.push(queuedAttempt(nextAttempt(u), s.backend.name, s.name, group));
        continue;
      }
      // Queued by a version that did not record the slot, or the group.
      if (pending.slot === undefined) Object.assign(pending, { backend: s.backend.name, slot: s.name });
      if (group !== undefined) pending.group ??= group;
    }
  }

  /**
   * The queued attempts of a slot whose group cannot go again whole: one of its attempts started,
   * ended, or is not queued here (a unit moved, a retry of some units). The group's submit may
   * have started them, and a submission of other attempts is another job to the scheduler, which
   * would start them again: their numbers are given up.
   */
  private brokenGroups(queued: Unit[]): Ending[] {
    const here = new Map<string, Unit[]>();
    for (const u of queued) {
      const group = groupOf(u);
      if (group === undefined) continue;
      const units = here.get(group);
      if (units) units.push(u);
      else here.set(group, [u]);
    }
    if (!here.size) return [];
    const members = new Map<string, number>();
    for (const a of allAttempts(this.run)) if (a.group !== undefined && here.has(a.group)) members.set(a.group, (members.get(a.group) ?? 0) + 1);
    const broken = [...here].filter(([group, units]) => units.length < members.get(group)!).flatMap(([, units]) => units);
    return broken.map((u) => this.retire(u, u.rec.attempts.at(-1)!, 'its submit may have started it with units no longer queued beside it, and cannot be sent again as it was'));
  }

  private submit(s: SlotState, units: Unit[]): void {
    s.submitting = true;
    const startedAt = this.clock.now();
    void (async (): Promise<Message> => {
      try {
        if (!s.prepared) {
          const err = (await s.backend.prepare([s.name], (slot, outcome, ms) => this.emit({ type: 'prepared', backend: s.backend.name, slot, outcome, ms }))).get(s.name);
          if (err) throw err;
          s.prepared = true;
        }
        for (const u of units) {
          if (u.pushFrom !== null && u.pushFrom !== s.name && !s.backend.workersReachStore) await s.backend.pushCheckpoints(s.name, unitKey(this.run, u.rec.index));
        }
        const subs = units.map((u) => ({ spec: this.opts.specFor(u.rec.index, u.rec.attempts.at(-1)!.n), slot: s.name }));
        const outcomes = await s.backend.submitMany(subs);
        const refused = outcomes.some((o) => o instanceof Error && !(o instanceof EarlierAttemptRunning));
        return { kind: 'submitted', slot: s, units, startedAt, outcomes, reachable: !refused || (await s.backend.reachable(s.name).catch(() => false)) };
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        return { kind: 'submitted', slot: s, units, startedAt, outcomes: units.map(() => err), reachable: await s.backend.reachable(s.name).catch(() => false) };
      }
    })().then((m) => this.post(m));
  }

  /**
   * A queued attempt whose submit may have started it where a submit now cannot find it (it went
   * to another slot than its unit's now, or with a group that cannot go again whole): a runner
   * claims the store by attempt number, so the number is given up. It ends `lost` as a lost
   * slot's attempts do (the unit is claimed for the next number, so a runner of it still alive
   * stops writing) and the next number goes here.
   */
  private retire(u: Unit, attempt: AttemptRecord, why: string): Ending {
    u.live = { attempt, eventsRead: 0, work: Promise.resolve(), pulling: false, inherited: false };
    return this.ending(u, unanswered(why), { pull: false });
  }

  /** Takes a submit's outcomes; what it returns, when it started any, goes once they are saved. */
  private async onSubmitted(m: Message & { kind: 'submitted' }): Promise<AfterSave | null> {
    const s = m.slot;
    s.submitting = false;
    const now = new Date(this.clock.now()).toISOString();
    const started: Unit[] = [];
    let failure: Error | null = null;
    for (const [i, u] of m.units.entries()) {
      const outcome = m.outcomes[i]!;
      if (outcome instanceof Error) {
        u.phase = this.stopping ? 'done' : 'queued'; // its recorded attempt is submitted again later (same number)
        // An earlier attempt still ending there: wait, never run one unit twice.
        if (outcome instanceof EarlierAttemptRunning) u.lastLine = `(waiting: ${firstLine(outcome)})`;
        else failure ??= outcome;
        continue;
      }
      this.begin(u, outcome, { started_at: now });
      started.push(u);
    }
    if (started.length || !failure) s.failingSince = null;
    await this.recordStarts(started, s, (u) => u.queuedEarlier);
    const refused = async () => {
      if (!failure) return;
      if (m.reachable) await this.refuse(s, firstLine(failure));
      else s.failingSince ??= m.startedAt; // tried again each tick until the slot is lost
    };
    if (!started.length) {
      await refused();
      return null;
    }
    this.unsaved = true;
    const begun = started.map((u) => ({ u, n: u.live!.attempt.n }));
    return async () => {
      for (const { u, n } of begun) {
        this.emit({ type: 'started', unit: u.rec.index, attempt: n, backend: s.backend.name, slot: s.name });
        // Asked to stop while its submit was on its way: asked now, as stop() asked the others.
        if (this.stopAsked && u.live?.attempt.handle) this.askToStop(u, u.live.attempt.handle);
      }
      await refused();
    };
  }

  /** A submitted attempt, from its handle on: live, followed by the polls. */
  private begin(u: Unit, handle: Handle, fields: Partial<AttemptRecord> = {}): void {
    const attempt = u.rec.attempts.at(-1)!;
    Object.assign(attempt, { handle, state: 'running', ...fields });
    u.live = { attempt, eventsRead: 0, work: Promise.resolve(), pulling: false, inherited: false };
    u.phase = 'live';
    u.pushFrom = null;
  }

  /**
   * Each start goes into the ledger before its handle into the record. A crash between the two
   * leaves the attempt queued: the next orchestrator submits it again under its number (the
   * backend finds the job by its name) and finds its start recorded. The other order could leave
   * a running attempt with no start in the ledger, and its checkpoints counted as an earlier
   * attempt's. `sentEarlier`: whatever this process saw, the ledger may have that start already
   * (one read of the ledger for all of them: a thousand shards resumed after a crash).
   */
  private async recordStarts(units: Unit[], s: SlotState, sentEarlier: (u: Unit) => boolean): Promise<void> {
    const unsure = units.filter(sentEarlier);
    const known = unsure.length ? await this.opts.journal.startsRecorded(this.run.run_id, unsure.map((u) => ({ unitKey: unitKey(this.run, u.rec.index), attempt: u.live!.attempt.n }))) : [];
    const recorded = new Set(unsure.filter((_, i) => known[i]));
    const where = s.backend.kind === 'placer' && !s.backend.attemptsInProcess ? { host: s.name } : {};
    for (const u of units) {
      if (!recorded.has(u)) await this.record('attempt.started', { ...this.tag(u), attempt: u.live!.attempt.n, backend: s.backend.name, ...where });
      u.queuedEarlier = false;
    }
  }

  /**
   * Takes what findSubmitted found: each attempt found is followed from here and asked to stop
   * once its handle is saved; one not found was never started, and stays queued (the stop's
   * record says it was cut off). Where the slot could not be asked, the stop could not reach it.
   */
  private async onFound(m: Message & { kind: 'found' }): Promise<AfterSave | null> {
    const found: Unit[] = [];
    for (const [i, u] of m.units.entries()) {
      const handle = m.found instanceof Error ? null : m.found[i];
      if (m.found instanceof Error) this.emit({ type: 'notice', unit: u.rec.index, line: `could not ask it to stop: its submit to ${m.slot.name} may have started it, and looking there failed: ${firstLine(m.found)}` });
      if (!handle) {
        u.phase = 'done';
        continue;
      }
      this.begin(u, handle);
      found.push(u);
    }
    await this.recordStarts(found, m.slot, () => true);
    if (!found.length) return null;
    this.unsaved = true;
    return async () => {
      for (const u of found) {
        this.emit({ type: 'notice', unit: u.rec.index, line: `attempt ${u.live!.attempt.n} was started on ${m.slot.name} by a submit whose answer was lost: asked to stop` });
        this.askToStop(u, u.live!.attempt.handle!);
      }
    };
  }

  // ---- following ------------------------------------------------------------------------

  private pollLive(): void {
    const bySlot = new Map<SlotState, Unit[]>();
    for (const u of this.units) {
      if (u.phase !== 'live') continue;
      const s = this.slots.get(u.backend, u.slot);
      if (s.polling !== null || s.down || this.clock.now() - s.polledAt < this.tickMs) continue;
      const units = bySlot.get(s);
      if (units) units.push(u);
      else bySlot.set(s, [u]);
    }
    for (const [s, units] of bySlot) {
      const startedAt = this.clock.now();
      s.polling = startedAt;
      s.polledAt = startedAt;
      const attempts = units.map((u) => u.live!.attempt);
      const reqs = units.map((u) => ({ handle: u.live!.attempt.handle!, eventsFrom: u.live!.eventsRead }));
      void s.backend
        .pollMany(reqs)
        .catch((err: unknown) => reqs.map(() => unanswered(firstLine(err))))
        .then((results) => this.post({ kind: 'polled', slot: s, units, attempts, startedAt, results }));
    }
  }

  /** Takes a round of polls; returns the attempts that ended, to be recorded once the record is saved. */
  private async onPolled(m: Message & { kind: 'polled' }): Promise<Ending[]> {
    m.slot.polling = null;
    const endings: Ending[] = [];
    for (const [i, u] of m.units.entries()) {
      // Ended meanwhile (its slot went down): that already recorded it.
      if (u.phase !== 'live' || u.live?.attempt !== m.attempts[i]) continue;
      const ending = await this.observe(u, m.results[i]!, m.slot, m.startedAt);
      if (ending) endings.push(ending);
    }
    return endings;
  }

  private async observe(u: Unit, poll: PollResult, s: SlotState, startedAt: number): Promise<Ending | null> {
    const live = u.live!;
    const { attempt } = live;
    if (poll.unanswered) {
      // A blip or a host gone: the unit keeps its place until the slot's lost-after time.
      s.failingSince ??= startedAt;
      u.silent = true;
      u.lastLine = `(${s.name} not answering: ${poll.reason ?? 'unreachable'})`;
      return null;
    }
    s.failingSince = null;
    u.silent = false;
    const inherited = live.inherited;
    live.inherited = false;
    // Most polls of a long run bring no new event lines: nothing to take, nothing to await.
    const taken = poll.events.length ? await takeEvents(live, poll.events, this.eventContext(u)) : NOTHING_TAKEN;
    if (taken.committed) {
      this.mirror(u, live);
      faultPoint('after-checkpoint');
    }
    if (taken.pruned.length) this.dropPruned(u, live, taken.pruned);
    let changed = taken.save;
    u.metrics = poll.metrics ?? u.metrics;
    attempt.metrics = u.metrics; // saved with the record: make status shows step and loss
    if (poll.last_line) u.lastLine = poll.last_line;
    if (!TERMINAL.has(poll.state)) {
      const reason = poll.state === 'pending' ? poll.reason : null;
      if (attempt.state !== poll.state || attempt.reason !== reason) {
        Object.assign(attempt, { state: poll.state, reason });
        changed = true;
      }
      if (changed) this.unsaved = true;
      return null;
    }
    return this.ending(u, poll, { pull: true, inherited });
  }

  /** Copies a unit's newest checkpoints home in the background, so a move can resume from them. */
  private mirror(u: Unit, live: Live): void {
    if (u.backend.workersReachStore || live.pulling || !live.attempt.handle) return;
    live.pulling = true;
    const handle = live.attempt.handle;
    // The host may be going away: a failed copy is retried at the next checkpoint.
    this.background(live, () => u.backend.pull(handle).finally(() => (live.pulling = false)));
  }

  /**
   * What the worker pruned where it runs goes from this machine's copy too, as the ledger says:
   * queued after the copy in flight, so that copy cannot bring a dropped step back.
   */
  private dropPruned(u: Unit, live: Live, steps: number[]): void {
    if (u.backend.workersReachStore) return;
    const unit = unitKey(this.run, u.rec.index);
    this.background(live, async () => {
      for (const step of steps) await this.opts.journal.dropStep(unit, step);
    });
  }

  private background(live: Live, task: () => Promise<void>): void {
    live.work = live.work.then(task).catch(() => {});
  }

  /** Takes a unit's attempt as ended: the unit is no longer live, whatever recording it brings. */
  private ending(u: Unit, poll: PollResult, opts: { pull: boolean; inherited?: boolean }): Ending {
    const live = u.live!;
    u.live = null;
    u.phase = 'done'; // until next() says otherwise, even should recording it fail
    return { u, live, poll, pull: opts.pull, inherited: opts.inherited ?? false };
  }

  /**
   * Records ended attempts: each one's files copied home (several slots at once), its fields set, the
   * record saved once for all of them and for the starts taken with them (with no start or end,
   * only when it was last saved a tick ago or more), then `started`, and each end's ledger entry,
   * after the save that holds it, and what comes next for its unit. A crash after the save may
   * leave an end out of the ledger, never in the ledger with the record still saying the
   * attempt runs.
   */
  private async endAll(endings: Ending[], started: AfterSave[] = []): Promise<void> {
    const bySlot = new Map<string, Ending[]>();
    for (const e of endings) {
      const key = `${e.u.backend.name}:${e.u.slot}`;
      bySlot.set(key, [...(bySlot.get(key) ?? []), e]);
    }
    await mapLimit([...bySlot.values()], SLOTS_PULLED_AT_ONCE, async (ofSlot) => {
      for (const e of ofSlot) await this.pullEnded(e);
    });
    for (const { u, live, poll } of endings) {
      if (poll.state === 'lost') await this.settleEvents(u, live);
      const reason = poll.state === 'cancelled' && this.stopReason ? this.stopReason : poll.reason;
      Object.assign(live.attempt, { state: poll.state, reason, exit_code: poll.exit_code, ended_at: new Date(this.clock.now()).toISOString() });
      this.unsaved = true;
    }
    const due = endings.length > 0 || started.length > 0 || this.clock.now() - this.savedAt >= this.tickMs;
    if (this.unsaved && due && !(await this.save())) return; // taken over while this process slept: its view is stale
    for (const then of started) await then();
    for (const e of endings) await this.recordEnd(e);
  }

  /** An ended attempt's background work finished and its files copied home. */
  private async pullEnded({ u, live, pull }: Ending): Promise<void> {
    await live.work;
    const { attempt } = live;
    if (!pull || !attempt.handle) return;
    await u.backend.pull(attempt.handle).catch((err: unknown) => {
      if (isDiskProblem(err)) throw err; // the record cannot be saved either: one line says why
      this.emit({ type: 'notice', unit: u.rec.index, line: `could not pull attempt ${attempt.n}: ${firstLine(err)}` });
    });
  }

  /** A saved end into the ledger, and what comes next for its unit. */
  private async recordEnd({ u, live: { attempt }, poll, inherited }: Ending): Promise<void> {
    await this.record('attempt.ended', { ...this.tag(u), attempt: attempt.n, state: attempt.state, exit_code: attempt.exit_code, last_step: attempt.last_step });
    this.emit({ type: 'ended', unit: u.rec.index, attempt: attempt.n, slot: attempt.slot ?? u.slot, state: poll.state, reason: attempt.reason, ms: this.clock.now() - Date.parse(attempt.started_at) });
    await this.settleLost(u);
    await this.next(u, poll.state, inherited);
  }

  /**
   * A lost attempt's runner may still be alive where it ran: the unit is claimed for the next
   * attempt (that runner stops writing to the store), then the ledger gets what the runner
   * copied to the store but no poll delivered (a prune just before its host went away), and
   * its files in the store are recorded as they are (`make pull` checks them against that).
   * Notices and restores are history by now: only the ledger's entries are taken.
   */
  private async settleEvents(u: Unit, live: Live): Promise<void> {
    const unit = unitKey(this.run, u.rec.index);
    await this.opts.journal.claim(unit, live.attempt.n + 1);
    await this.opts.journal.sealAttemptFiles(unit, live.attempt.n);
    const events = (await this.opts.journal.storedEvents(unit, live.attempt.n)).slice(live.eventsRead);
    if (!events.length) return;
    const kept = events.map((e) => (e && e.type !== 'notice' && e.type !== 'restored' ? e : null));
    const taken = await takeEvents(live, kept, this.eventContext(u));
    for (const step of taken.pruned) if (!u.backend.workersReachStore) await this.opts.journal.dropStep(unit, step);
  }

  /**
   * After an attempt of a unit that has lost attempts: each step the ledger has live from a lost attempt that this machine's store lacks (never
   * copied home, or pruned there unheard of) is recorded as `ckpt.lost`, so verify stops
   * expecting it. Checked at every later end too: a runner may prune once more before it sees
   * the claim.
   */
  private async settleLost(u: Unit): Promise<void> {
    const unit = unitKey(this.run, u.rec.index);
    const lost = u.rec.attempts.filter((a) => a.state === 'lost');
    if (!lost.length) return;
    for (const s of await this.opts.journal.lostSteps(this.run.run_id, unit, lost.map((a) => a.n))) {
      const a = lost.find((x) => x.n === s.attempt)!;
      const host = typeof a.handle?.host === 'string' ? a.handle.host : a.backend;
      await this.record('ckpt.lost', { ...this.tag(u), step: s.step, host, attempt: a.n });
    }
  }

  /**
   * After an attempt's end: the next attempt, or none. An attempt that had ended before this
   * launch saw it (`inherited`: its orchestrator was gone) counts as any unfinished unit does
   * at a launch: it goes on unless it succeeded.
   */
  private async next(u: Unit, state: AttemptState, inherited: boolean): Promise<void> {
    u.phase = 'done';
    const ended = u.rec.attempts.at(-1)!;
    const resumable = inherited && !this.opts.inheritedAsOwn ? state !== 'succeeded' : resumes(ended, u.rec.attempts, this.run.spec);
    if (!resumable || this.stopping || this.detached) return;
    if (ended.n + 1 > u.limit) {
      this.emit({ type: 'gave-up', unit: u.rec.index, attempts: this.opts.maxAttempts });
      return;
    }
    u.phase = 'queued';
    // Bounded and backed off: the first retry at once, then 2 s, 4 s, ... (failover.ts).
    u.notBefore = this.clock.now() + retryDelayMs(endsInARow(u.rec.attempts));
    const s = this.slots.get(u.backend, u.slot);
    // The slot must be able to take it now: a cluster that stopped answering sends it down the run's backends.
    if (Slots.open(s) && state !== 'failed' && !(await u.backend.reachable(u.slot).catch(() => false))) await this.refuse(s, 'not answering');
    if (!Slots.open(s)) await this.moveAway([u], s);
    if (!Slots.open(this.slots.get(u.backend, u.slot))) return; // waits: nowhere to go
    this.emit({ type: 'retrying', unit: u.rec.index, after: { attempt: ended.n, state, reason: ended.reason }, next: { attempt: ended.n + 1, backend: u.backend.name, slot: u.slot } });
  }

  // ---- lost and refused slots -----------------------------------------------------------

  private async checkLost(): Promise<void> {
    const now = this.clock.now();
    // A process that slept (stopped, a laptop's closed lid) heard nothing meanwhile: the silence counts from when it woke.
    if (this.checkedAt !== null && now - this.checkedAt > 5 * this.tickMs) {
      for (const s of this.slots.all()) {
        if (s.failingSince !== null) s.failingSince = now;
        if (s.polling !== null) s.polling = now;
      }
    }
    this.checkedAt = now;
    for (const s of this.slots.all()) {
      if (s.down) continue;
      const since = Slots.silentSince(s, now, this.tickMs);
      if (since !== null && now - since >= s.backend.lostAfterMs(s.name)) await this.slotDown(s, `no answer for ${Math.round((now - since) / 1000)}s`);
    }
  }

  /** A slot stopped answering: its attempts are lost, and its units move. */
  private async slotDown(s: SlotState, reason: string): Promise<void> {
    s.down = reason;
    this.emit({ type: 'slot-down', backend: s.backend.name, slot: s.name, reason });
    const here = () => this.units.filter((u) => u.backend === s.backend && u.slot === s.name);
    // Each ends lost (and moves on from there); then whatever was queued here moves too.
    await this.endAll(this.lostOn(s, here()));
    await this.moveAway(here().filter((u) => u.phase === 'queued'), s);
  }

  /** The live ones of a down slot's units, taken as ended lost: nothing to pull from a host that does not answer. */
  private lostOn(s: SlotState, units: Unit[]): Ending[] {
    return units.filter((u) => u.phase === 'live').map((u) => this.ending(u, unanswered(`${s.name} stopped answering (${s.down})`), { pull: false }));
  }

  /**
   * A submit that returned after its slot closed: slotDown and refuse saw its units submitting,
   * neither live nor queued. What it did not start moves now (else it waits on the closed slot
   * for good); on a down slot, which no poll reaches, what it started ends lost as slotDown ends
   * the rest, returned to be recorded with the drain's other ends.
   */
  private async cameBackClosed(s: SlotState, units: Unit[]): Promise<Ending[]> {
    await this.moveAway(units.filter((u) => u.phase === 'queued' && u.backend === s.backend && u.slot === s.name), s);
    return s.down ? this.lostOn(s, units) : [];
  }

  /** A slot that answers but cannot take units: no more go there; what runs there goes on. */
  private async refuse(s: SlotState, reason: string): Promise<void> {
    if (s.refused || s.down) return;
    s.refused = reason;
    this.emit({ type: 'slot-refused', backend: s.backend.name, slot: s.name, reason });
    await this.moveAway(this.units.filter((u) => u.backend === s.backend && u.slot === s.name && u.phase === 'queued'), s);
  }

  /** Moves units off a closed slot: to the least loaded open slot of their backend, else the next backend. */
  private async moveAway(units: Unit[], from: SlotState): Promise<void> {
    if (!units.length) return;
    if (this.opts.requeue === false || this.stopping || this.detached) {
      for (const u of units) this.emit({ type: 'waiting', unit: u.rec.index, why: `waits for ${from.name} (requeue is off)` });
      return;
    }
    for (const u of units) {
      const target = (await this.openSlotFor(u.backend)) ?? (await this.failover(u.backend));
      if (!target) {
        this.emit({ type: 'waiting', unit: u.rec.index, why: 'no healthy slot left to move it to' });
        continue;
      }
      const steps = await this.opts.journal.storedSteps(unitKey(this.run, u.rec.index));
      const resumeStep = steps.at(-1) ?? null;
      const to = target.backend === u.backend ? target.name : `${target.backend.name}${target.backend.name === target.name ? '' : `:${target.name}`}`;
      u.rec.moved_from.push(from.name);
      u.pushFrom = from.name;
      u.backend = target.backend;
      u.slot = target.name;
      await this.record('unit.moved', { ...this.tag(u), from: from.name, to, resume_step: resumeStep });
      this.emit({ type: 'moved', unit: u.rec.index, from: from.name, to, resumeStep });
    }
    await this.save();
  }

  private async openSlotFor(backend: Backend): Promise<SlotState | null> {
    const open = backend.slots().map((x) => this.slots.get(backend, x.name)).filter((x) => Slots.open(x));
    if (!open.length) return null;
    const queued = (s: SlotState) => this.units.filter((u) => u.backend === s.backend && u.slot === s.name && u.phase === 'queued').length;
    return open.reduce((best, s) => (this.load(s) + queued(s) < this.load(best) + queued(best) ? s : best));
  }

  /**
   * The next viable backend of the run's order after `from`: one whose capabilities fit the
   * spec's resources, with an open slot that answers now.
   */
  private async failover(from: Backend): Promise<SlotState | null> {
    const order = this.run.backends;
    for (const name of order.slice(order.indexOf(from.name) + 1)) {
      const backend = await this.opts.openBackend(name).catch(() => null);
      if (!backend || !fitsResources(this.run.spec, backend.capabilities)) continue;
      const slot = await this.openSlotFor(backend);
      if (slot && (await backend.reachable(slot.name).catch(() => false))) return slot;
    }
    return null;
  }

  // ---- state ----------------------------------------------------------------------------

  private finished(): boolean {
    return this.units.every((u) => {
      if (u.phase === 'live' || u.phase === 'submitting' || u.phase === 'finding') return false;
      if (u.phase !== 'queued') return true;
      return !Slots.open(this.slots.get(u.backend, u.slot)) || this.stopping;
    });
  }

  /** Units waiting on a closed slot (requeue off, or no healthy slot left). */
  stranded(): number[] {
    return this.units.filter((u) => u.phase === 'queued').map((u) => u.rec.index);
  }

  view(): UnitView[] {
    return this.units.map(unitView);
  }
}
