// A scripted backend and a virtual clock for testing the supervisor's logic without processes:
// hosts that answer, refuse, blip, vanish and come back; attempts that finish, fail, get
// preempted or lost after a scripted time, committing checkpoints as they go. Everything runs
// on FakeClock's time, so a schedule of minutes takes milliseconds and never depends on load.
import type { Backend, Capabilities, Handle, PollRequest, PollResult, Slot, Submission } from '../../scripts/lib/backends/backend.js';
import { EarlierAttemptRunning } from '../../scripts/lib/backends/backend.js';
import type { BackendName } from '../../scripts/lib/config/define-config.js';
import type { AttemptSpec, AttemptState, RunnerEvent } from '../../scripts/lib/runner/attempt-spec.js';
import type { LedgerFields } from '../../scripts/lib/ledger/format.js';
import type { Clock, Journal } from '../../scripts/lib/runs/supervision.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';

/** A run of `units` units with no attempts yet, sharded when it has more than one. */
export function demoRun(units: number, backends: BackendName[] = ['fleet']): RunRecord {
  return {
    run_id: 'demo-default-20261130T1200-0badf00d',
    experiment: 'demo',
    created_at: '2026-11-30T12:00:00.000Z',
    pins: {} as RunRecord['pins'],
    spec: { shards: { count: units } } as RunRecord['spec'],
    command: { train: 'true', predict: null },
    backends,
    replay_of: null,
    sharded: units > 1,
    units: Array.from({ length: units }, (_, index) => ({ index, attempts: [], moved_from: [] })),
  };
}

export class FakeClock implements Clock {
  protected t = 0;
  private timers: { at: number; seq: number; resolve: () => void }[] = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, resolve };
      this.timers.push(timer);
      signal?.addEventListener('abort', () => {
        this.timers = this.timers.filter((x) => x !== timer);
        resolve();
      });
    });
  }

  /** Time passes with this process stopped (SIGSTOP, a laptop asleep): no timer fires meanwhile. */
  pass(ms: number): void {
    this.t += ms;
  }

  /** Moves time to the next timer and fires it; false when none is pending. */
  advance(): boolean {
    if (!this.timers.length) return false;
    this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const next = this.timers.shift()!;
    this.t = Math.max(this.t, next.at);
    next.resolve();
    return true;
  }
}

const settle = async () => {
  for (let i = 0; i < 8; i++) await new Promise((r) => setImmediate(r));
};

/** Runs `work` to completion on the virtual clock; a wait nothing can end is a test failure. */
export async function onClock<T>(clock: FakeClock, work: Promise<T>, limitMs = 24 * 3600_000): Promise<T> {
  let done = false;
  const result = work.finally(() => (done = true));
  result.catch(() => {});
  for (;;) {
    await settle();
    if (done) return result;
    if (clock.now() > limitMs) throw new Error(`still running after ${limitMs} ms of virtual time`);
    if (!clock.advance()) throw new Error('deadlock: the supervisor waits for something no timer or poll can bring');
  }
}

/** How one attempt goes: it runs `ms`, commits a checkpoint every `commitEveryMs`, then ends `end`. */
export interface AttemptPlan {
  ms: number;
  end: AttemptState;
  commitEveryMs?: number;
}

export interface FakeHost {
  /** polls and submits get no answer between these times (processes keep running) */
  blips: [number, number][];
  /** from this time on the host is gone: no answer, its processes dead */
  vanishAt: number | null;
  /** how long a poll takes */
  pollMs: number;
  /** answers, but refuses to take attempts */
  refuses: boolean;
  capacity: number;
}

interface FakeAttempt {
  spec: AttemptSpec;
  host: string;
  startedAt: number;
  plan: AttemptPlan;
  events: RunnerEvent[];
  ended: boolean;
}

export class FakeBackend implements Backend {
  readonly kind = 'placer' as const;
  get title(): string {
    return String(this.name);
  }
  readonly capabilities: Capabilities = { gpus: 0, spot: false, shards: true };
  readonly attemptsInProcess = false;
  readonly attempts: FakeAttempt[] = [];
  private readonly byKey = new Map<string, FakeAttempt>();
  /** every pollMany call: when, which slot, how many handles */
  readonly polls: { at: number; slot: string; n: number }[] = [];
  /** violations the backend saw itself (two live attempts of one unit, a submit to a dead host) */
  readonly violations: string[] = [];
  /** every cancel asked, in order: the unit and whether it was to kill now */
  readonly cancels: { unit: string; force: boolean }[] = [];

  constructor(
    readonly name: BackendName,
    private readonly clock: FakeClock,
    readonly hosts: Map<string, FakeHost>,
    private readonly planFor: (unit: string, attempt: number) => AttemptPlan,
    /** the home store: unit → committed steps there */
    readonly home: Map<string, Set<number>>,
    readonly workersReachStore = false,
    private readonly lostAfter = 30_000,
  ) {}

  static host(over: Partial<FakeHost> = {}): FakeHost {
    return { blips: [], vanishAt: null, pollMs: 50, refuses: false, capacity: 1, ...over };
  }

  private answers(host: string): boolean {
    const h = this.hosts.get(host)!;
    const t = this.clock.now();
    if (h.vanishAt !== null && t >= h.vanishAt) return false;
    return !h.blips.some(([a, b]) => t >= a && t < b);
  }

  private dead(host: string, at = this.clock.now()): boolean {
    const v = this.hosts.get(host)!.vanishAt;
    return v !== null && at >= v;
  }

  /** The attempt's state at time t, materializing its commits. */
  private advance(a: FakeAttempt): AttemptState {
    const t = this.clock.now();
    const deadAt = this.hosts.get(a.host)!.vanishAt;
    const until = Math.min(t, a.startedAt + a.plan.ms, deadAt ?? Infinity);
    const every = a.plan.commitEveryMs;
    if (every) {
      const commits = Math.floor((until - a.startedAt) / every);
      const have = a.events.filter((e) => e.type === 'ckpt.committed').length;
      for (let i = have + 1; i <= commits; i++) {
        a.events.push({ type: 'ckpt.committed', step: i, manifest: `m${i}`, manifest_sha256: 'x' });
        if (this.workersReachStore) this.stepsHome(a.spec.unit_id).add(i);
      }
    }
    if (deadAt !== null && t >= deadAt && t < a.startedAt + a.plan.ms) return 'running'; // frozen: nobody will know
    if (t >= a.startedAt + a.plan.ms) {
      a.ended = true;
      return a.plan.end;
    }
    return 'running';
  }

  private stepsHome(unit: string): Set<number> {
    let s = this.home.get(unit);
    if (!s) this.home.set(unit, (s = new Set()));
    return s;
  }

  private find(handle: Handle): FakeAttempt {
    const a = this.byKey.get(`${String(handle.unit)}#${String(handle.attempt)}@${String(handle.host)}`);
    if (!a) throw new Error(`no fake attempt for ${JSON.stringify(handle)}`);
    return a;
  }

  slots(): Slot[] {
    return [...this.hosts].map(([name, h]) => ({ name, capacity: h.capacity }));
  }

  lostAfterMs(): number {
    return this.lostAfter;
  }

  slotOf(handle: Handle): string {
    return String(handle.host);
  }

  async prepare(slots: readonly string[], report?: (slot: string, outcome: string | Error, ms: number) => void): Promise<Map<string, Error | null>> {
    const out = new Map<string, Error | null>();
    for (const s of slots) {
      const err = !this.answers(s) ? new Error(`${s}: connect timeout`) : this.hosts.get(s)!.refuses ? new Error(`${s}: not bootstrapped`) : null;
      report?.(s, err ?? 'ready', 0);
      out.set(s, err);
    }
    return out;
  }

  async submitMany(subs: readonly Submission[]): Promise<(Handle | Error)[]> {
    const host = subs[0]!.slot;
    await this.clock.sleep(this.hosts.get(host)!.pollMs);
    if (!this.answers(host)) throw new Error(`${host}: connect timeout`);
    if (this.hosts.get(host)!.refuses) throw new Error(`${host}: cannot start`);
    return subs.map(({ spec, slot }): Handle | Error => {
      const same = this.byKey.get(`${spec.unit_id}#${spec.attempt}@${slot}`);
      if (!same) {
        const earlier = this.attempts.find((a) => a.spec.unit_id === spec.unit_id && a.host === slot && !a.ended && !this.dead(a.host) && this.advance(a) === 'running');
        if (earlier) return new EarlierAttemptRunning(`${slot}: attempt ${earlier.spec.attempt} of ${spec.unit_id} still runs`);
        const elsewhere = this.attempts.find((a) => a.spec.unit_id === spec.unit_id && !a.ended && !this.dead(a.host) && this.advance(a) === 'running');
        if (elsewhere) this.violations.push(`t=${this.clock.now()}: ${spec.unit_id} attempt ${spec.attempt} started on ${slot} while attempt ${elsewhere.spec.attempt} runs on ${elsewhere.host}`);
        const attempt = { spec, host: slot, startedAt: this.clock.now(), plan: this.planFor(spec.unit_id, Number(spec.attempt)), events: [], ended: false };
        this.attempts.push(attempt);
        this.byKey.set(`${spec.unit_id}#${spec.attempt}@${slot}`, attempt);
      }
      return { backend: this.name, host: slot, unit: spec.unit_id, attempt: spec.attempt };
    });
  }

  /** every findSubmitted call: the slot and the units asked about */
  readonly finds: { slot: string; units: string[] }[] = [];

  async findSubmitted(subs: readonly Submission[]): Promise<(Handle | null)[]> {
    const host = subs[0]!.slot;
    this.finds.push({ slot: host, units: subs.map((s) => s.spec.unit_id) });
    await this.clock.sleep(this.hosts.get(host)!.pollMs);
    if (!this.answers(host)) throw new Error(`${host}: connect timeout`);
    return subs.map(({ spec, slot }) => (this.byKey.has(`${spec.unit_id}#${spec.attempt}@${slot}`) ? { backend: this.name, host: slot, unit: spec.unit_id, attempt: spec.attempt } : null));
  }

  async pollMany(reqs: readonly PollRequest[]): Promise<PollResult[]> {
    const host = String(reqs[0]!.handle.host);
    this.polls.push({ at: this.clock.now(), slot: host, n: reqs.length });
    if (reqs.some((r) => r.handle.host !== host)) this.violations.push('pollMany mixed slots');
    await this.clock.sleep(this.hosts.get(host)!.pollMs);
    return reqs.map(({ handle, eventsFrom }) => {
      if (!this.answers(host)) return { state: 'lost', reason: `${host}: no answer`, exit_code: null, events: [], metrics: null, last_line: null, unanswered: true };
      const a = this.find(handle);
      const state = this.advance(a);
      return { state, reason: state === 'running' ? null : `planned ${state}`, exit_code: state === 'succeeded' ? 0 : null, events: a.events.slice(eventsFrom), metrics: null, last_line: null, unanswered: false };
    });
  }

  async cancel(handle: Handle, opts: { force?: boolean } = {}): Promise<void> {
    this.cancels.push({ unit: String(handle.unit), force: opts.force ?? false });
    const a = this.find(handle);
    a.plan = { ...a.plan, ms: Math.max(0, this.clock.now() - a.startedAt), end: 'cancelled' };
  }

  async *logs(): AsyncIterable<string> {}

  async pull(handle: Handle): Promise<void> {
    const a = this.find(handle);
    if (!this.answers(a.host)) throw new Error(`${a.host}: no answer`);
    for (const e of a.events) if (e.type === 'ckpt.committed') this.stepsHome(a.spec.unit_id).add(e.step);
  }

  async pushCheckpoints(): Promise<void> {}

  async reachable(slot: string): Promise<boolean> {
    return this.answers(slot);
  }
}

/** A journal in memory: the run as last saved, the ledger entries, the home store's steps. */
/** The unit an entry is about, as unitKey names it. */
const unitOf = (e: Record<string, unknown>) => (e.shard === undefined ? String(e.run_id) : `${String(e.run_id)}/shards/${String(e.shard)}`);

export class MemoryJournal implements Journal {
  readonly entries: ({ type: string } & Record<string, unknown>)[] = [];
  saved = 0;

  constructor(readonly home: Map<string, Set<number>>) {}

  async save(_run: RunRecord): Promise<void> {
    this.saved++;
  }

  async record<T extends string>(type: T, fields: LedgerFields<T>): Promise<void> {
    this.entries.push({ type, ...fields });
  }

  /** how many times the ledger was read for starts */
  startReads = 0;

  async startsRecorded(runId: string, attempts: readonly { unitKey: string; attempt: number }[]): Promise<boolean[]> {
    this.startReads++;
    return attempts.map(({ unitKey, attempt }) => this.entries.some((e) => e.type === 'attempt.started' && e.run_id === runId && unitOf(e) === unitKey && (e.attempt as number) >= attempt));
  }

  readonly claims = new Map<string, number>();
  /** what each lost attempt's runner copied to the store, by `${unit}#${attempt}` */
  readonly stored = new Map<string, RunnerEvent[]>();

  async storedEvents(unit: string, attempt: number): Promise<(RunnerEvent | null)[]> {
    return this.stored.get(`${unit}#${attempt}`) ?? [];
  }

  async claim(unit: string, attempt: number): Promise<void> {
    this.claims.set(unit, attempt);
  }

  /** `${unit}#${attempt}` of each attempt whose files were sealed, with the claim seen then */
  readonly sealed: { attempt: string; claim: number | undefined }[] = [];

  async sealAttemptFiles(unit: string, attempt: number): Promise<void> {
    this.sealed.push({ attempt: `${unit}#${attempt}`, claim: this.claims.get(unit) });
  }

  /** The ledger folded as audit/ledger-state.ts folds it: live steps with the attempt that committed them. */
  async lostSteps(runId: string, unit: string, attempts: readonly number[]): Promise<{ step: number; attempt: number }[]> {
    let current = 0;
    const live = new Map<number, number>();
    for (const e of this.entries) {
      if (e.run_id !== runId || unitOf(e) !== unit) continue;
      if (e.type === 'attempt.started') current = e.attempt as number;
      else if (e.type === 'ckpt.committed') live.set(e.step as number, current);
      else if (e.type === 'ckpt.pruned' || e.type === 'ckpt.lost') live.delete(e.step as number);
    }
    const home = this.home.get(unit) ?? new Set<number>();
    return [...live].filter(([step, a]) => attempts.includes(a) && !home.has(step)).map(([step, attempt]) => ({ step, attempt }));
  }

  async dropStep(unit: string, step: number): Promise<void> {
    this.home.get(unit)?.delete(step);
  }

  async storedSteps(unit: string): Promise<number[]> {
    return [...(this.home.get(unit) ?? [])].sort((a, b) => a - b);
  }
}
