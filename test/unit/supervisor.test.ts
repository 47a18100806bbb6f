// The supervisor's logic against a scripted backend on a virtual clock: placement, preemption,
// blips that must not move anything, lost hosts, refusing hosts, failover to the next backend,
// the attempt budget, one poll per host per tick, slow hosts that must not hold up the others,
// and 200 random schedules checked for the invariants that matter.
import { describe, expect, it } from 'vitest';
import type { Backend, Handle } from '../../scripts/lib/backends/backend.js';
import type { BackendName } from '../../scripts/lib/config/define-config.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import { runState, summarize, TERMINAL, unitKey, unitState, type RunRecord, type RunState } from '../../scripts/lib/runs/run-record.js';
import { Supervisor } from '../../scripts/lib/runs/supervisor.js';
import { queuedAttempt } from '../../scripts/lib/runs/units.js';
import type { SupervisorEvent } from '../../scripts/lib/runs/supervision.js';
import { demoRun, FakeBackend, FakeClock, MemoryJournal, onClock, type AttemptPlan, type FakeHost } from '../helpers/fake-backend.js';

const TICK = 1000;
const LOST_AFTER = 30_000;

function specFor(run: RunRecord) {
  return (unit: number, attempt: number) => ({ run_id: run.run_id, unit_id: unitKey(run, unit), attempt, shard_index: unit, shard_count: run.units.length }) as AttemptSpec;
}

interface World {
  clock: FakeClock;
  run: RunRecord;
  backend: FakeBackend;
  others: Map<string, FakeBackend>;
  journal: MemoryJournal;
  events: (SupervisorEvent & { at: number })[];
  supervisor: Supervisor;
}

function world(opts: {
  units: number;
  hosts: Record<string, Partial<FakeHost>>;
  plan: (unit: string, attempt: number) => AttemptPlan;
  maxAttempts?: number;
  reachStore?: boolean;
  backends?: BackendName[];
  others?: Record<string, Record<string, Partial<FakeHost>>>;
  lostAfter?: number;
  /** asked after a long gap: whether the run is still this process's */
  stillOwner?: () => Promise<boolean>;
  /** a stop another process asks for (make stop in another shell) */
  stopRequest?: (clock: FakeClock) => { force?: boolean } | null;
  /** what an earlier orchestrator left: the run record and the ledger as it found them */
  before?: (run: RunRecord, journal: MemoryJournal) => void;
}): World {
  const clock = new FakeClock();
  const home = new Map<string, Set<number>>();
  const run = demoRun(opts.units, opts.backends);
  const hosts = (h: Record<string, Partial<FakeHost>>) => new Map(Object.entries(h).map(([n, o]) => [n, FakeBackend.host(o)]));
  const name = (opts.backends ?? ['fleet'])[0]!;
  const backend = new FakeBackend(name, clock, hosts(opts.hosts), opts.plan, home, opts.reachStore ?? false, opts.lostAfter ?? LOST_AFTER);
  const others = new Map(Object.entries(opts.others ?? {}).map(([n, h]) => [n, new FakeBackend(n as BackendName, clock, hosts(h), opts.plan, home, true, LOST_AFTER)]));
  const journal = new MemoryJournal(home);
  opts.before?.(run, journal);
  const events: World['events'] = [];
  const supervisor = new Supervisor({
    run,
    backend,
    openBackend: async (n) => {
      const b = n === backend.name ? backend : others.get(n);
      if (!b) throw new Error(`no backend ${n}`);
      return b as Backend;
    },
    journal,
    specFor: specFor(run),
    maxAttempts: opts.maxAttempts ?? 5,
    stillOwner: opts.stillOwner,
    stopRequest: opts.stopRequest && (() => opts.stopRequest!(clock)),
    sink: (e) => events.push({ ...e, at: clock.now() }),
    clock,
    tickMs: TICK,
  });
  return { clock, run, backend, others, journal, events, supervisor };
}

/** Attempt 1 of unit 0 started on h1 by an orchestrator that is gone: recorded running, nobody following it. */
async function leftRunning(w: World): Promise<void> {
  const [handle] = await onClock(w.clock, w.backend.submitMany([{ spec: specFor(w.run)(0, 1), slot: 'h1' }]));
  w.run.units[0]!.attempts.push({ n: 1, backend: 'fleet', handle: handle as Handle, state: 'running', reason: null, exit_code: null, started_at: new Date(0).toISOString(), ended_at: null, restored_step: null, last_step: null, events_seen: 0 });
}

/**
 * The store fence (runner/attempt-fence.ts): once a unit is claimed for a newer attempt, a
 * runner of an older one stops. The fake's runners end `cancelled` at the claim.
 */
function fenced(w: World): void {
  const claim = w.journal.claim.bind(w.journal);
  w.journal.claim = async (unit, n) => {
    await claim(unit, n);
    for (const a of w.backend.attempts) {
      if (a.spec.unit_id === unit && Number(a.spec.attempt) < n && !a.ended) a.plan = { ...a.plan, ms: Math.min(a.plan.ms, w.clock.now() - a.startedAt), end: 'cancelled' };
    }
  };
}

const ok = (ms = 5000): AttemptPlan => ({ ms, end: 'succeeded', commitEveryMs: 1000 });
const finalStates = (w: World) => w.run.units.map((u) => u.attempts.at(-1)?.state);
/** The last checkpoint steps of every unit's latest attempt, added up: what a saved record knows. */
const stepsOf = (run: RunRecord) => run.units.reduce((n, u) => n + (u.attempts.at(-1)?.last_step ?? 0), 0);

describe('supervisor', () => {
  it('runs every unit once on its planned host, one at a time per host', async () => {
    const w = world({ units: 6, hosts: { h1: {}, h2: {}, h3: {} }, plan: () => ok() });
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w)).toEqual(Array(6).fill('succeeded'));
    expect(w.run.units.map((u) => u.attempts.length)).toEqual(Array(6).fill(1));
    expect(w.run.units.map((u) => u.attempts[0]!.handle!.host)).toEqual(['h1', 'h2', 'h3', 'h1', 'h2', 'h3']);
    expect(w.backend.violations).toEqual([]);
    // The last step comes from the runner's events, on every backend alike.
    expect(w.run.units.every((u) => u.attempts[0]!.last_step === 5)).toBe(true);
    expect(w.journal.entries.filter((e) => e.type === 'ckpt.committed')).toHaveLength(30);
  });

  it('drives a run a stop cut off: its units not started yet read created while they wait, not cancelled', async () => {
    const w = world({ units: 2, hosts: { h1: {} }, plan: () => ok(), before: (run) => (run.stopped_at = '2026-11-30T12:05:00.000Z') });
    const seen: Partial<Record<RunState, number>>[] = [];
    w.journal.save = async (run) => void seen.push(summarize(run).states);
    await onClock(w.clock, w.supervisor.drive());
    expect(seen[0]).toMatchObject({ created: 1 });
    expect(seen.every((states) => !states.cancelled)).toBe(true);
    expect(finalStates(w)).toEqual(['succeeded', 'succeeded']);
  });

  it('a stop asked by another process: the units it cut off before they started read cancelled in the saved record', async () => {
    const w = world({ units: 3, hosts: { h1: { capacity: 1 } }, plan: () => ok(20_000), stopRequest: (clock) => (clock.now() >= 3 * TICK ? {} : null) });
    let saved: RunRecord | undefined;
    w.journal.save = async (run) => void (saved = structuredClone(run));
    await onClock(w.clock, w.supervisor.drive());
    expect(saved!.units.map((u) => u.attempts.map((a) => a.state))).toEqual([['cancelled'], [], []]);
    expect(saved!.units.map((u) => unitState(saved!, u))).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(runState(saved!)).toBe('cancelled');
  });

  it('a stop asked by another process before a submit: an attempt recorded but never sent reads cancelled too', async () => {
    // An earlier launcher recorded unit 0's attempt and died before its submit.
    const w = world({ units: 2, hosts: { h1: {} }, plan: () => ok(), before: (run) => run.units[0]!.attempts.push(queuedAttempt(1, 'fleet', 'h1')), stopRequest: () => ({}) });
    let saved: RunRecord | undefined;
    w.journal.save = async (run) => void (saved = structuredClone(run));
    await onClock(w.clock, w.supervisor.drive());
    expect(w.backend.attempts).toEqual([]);
    expect(saved!.units.map((u) => u.attempts.map((a) => a.state))).toEqual([['queued'], []]);
    expect(saved!.units.map((u) => unitState(saved!, u))).toEqual(['cancelled', 'cancelled']);
    expect(runState(saved!)).toBe('cancelled');
  });

  it('starts a preempted unit again on the same host, from where it was', async () => {
    const w = world({ units: 1, hosts: { h1: {} }, plan: (_u, n) => (n === 1 ? { ms: 3500, end: 'preempted', commitEveryMs: 1000 } : ok()) });
    await onClock(w.clock, w.supervisor.drive());
    const [a1, a2] = w.run.units[0]!.attempts;
    expect([a1!.state, a2!.state]).toEqual(['preempted', 'succeeded']);
    expect(a2!.handle!.host).toBe('h1');
    expect(w.journal.entries.filter((e) => e.type === 'attempt.started')).toHaveLength(2);
  });

  it('waits out a blip shorter than lost_after: nothing moves, nothing runs twice', async () => {
    const w = world({ units: 3, hosts: { h1: {}, h2: { blips: [[2000, 14_000]] }, h3: {} }, plan: () => ok(20_000) });
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(w.run.units.map((u) => u.attempts.length)).toEqual([1, 1, 1]);
    expect(w.events.filter((e) => e.type === 'slot-down' || e.type === 'moved')).toEqual([]);
  });

  it('puts every start in the ledger before its handle in the record', async () => {
    const w = world({ units: 3, hosts: { h1: {}, h2: {} }, plan: (_u, n) => (n === 1 ? { ms: 2500, end: 'preempted', commitEveryMs: 1000 } : ok()) });
    const missing: string[] = [];
    const save = w.journal.save.bind(w.journal);
    w.journal.save = async (run) => {
      for (const u of run.units) {
        for (const a of u.attempts) {
          if (a.handle && !(await w.journal.startsRecorded(run.run_id, [{ unitKey: unitKey(run, u.index), attempt: a.n }]))[0]) missing.push(`unit ${u.index} attempt ${a.n}`);
        }
      }
      return save(run);
    };
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(missing).toEqual([]);
  });

  it('records the start of an attempt an orchestrator that died had queued once, whether or not it got to the ledger', async () => {
    for (const recorded of [true, false]) {
      const w = world({
        units: 1,
        hosts: { h1: {} },
        plan: () => ok(),
        before: (run, journal) => {
          run.units[0]!.attempts.push(queuedAttempt(1, 'fleet', 'h1'));
          if (recorded) void journal.record('attempt.started', { run_id: run.run_id, attempt: 1, backend: 'fleet' });
        },
      });
      await onClock(w.clock, w.supervisor.drive());
      expect(finalStates(w)).toEqual(['succeeded']);
      expect(w.journal.entries.filter((e) => e.type === 'attempt.started').map((e) => e.attempt)).toEqual([1]);
    }
  });

  it('resubmitting the attempts a dead orchestrator had queued, reads the ledger for their starts once, not once per unit', async () => {
    const w = world({
      units: 4,
      hosts: { h1: { capacity: 4 } },
      plan: () => ok(),
      before: (run) => {
        for (const u of run.units) u.attempts.push(queuedAttempt(1, 'fleet', 'h1'));
      },
    });
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(w.journal.entries.filter((e) => e.type === 'attempt.started')).toHaveLength(4);
    expect(w.journal.startReads).toBe(1);
  });

  it('never calls a slot lost for slow polls when its attempts can only be lost by their poll (in-process runners)', async () => {
    const w = world({ units: 1, hosts: { local: { pollMs: 5 * TICK } }, plan: () => ok(20_000), lostAfter: Number.POSITIVE_INFINITY });
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w)).toEqual(['succeeded']);
    expect(w.events.filter((e) => e.type === 'slot-down')).toEqual([]);
  });

  it('declares a vanished host lost within one tick of lost_after, moves its unit and records what never came home', async () => {
    const w = world({ units: 2, hosts: { h1: {}, h2: { vanishAt: 5500 } }, plan: () => ok(60_000) });
    await onClock(w.clock, w.supervisor.drive());
    const down = w.events.find((e) => e.type === 'slot-down')!;
    // The first poll that gets no answer started at most a tick before 5.5 s; lost_after later, within a tick.
    expect(down.at).toBeGreaterThanOrEqual(5500 - TICK + LOST_AFTER);
    expect(down.at).toBeLessThanOrEqual(5500 + LOST_AFTER + 2 * TICK);
    const moved = w.events.find((e) => e.type === 'moved') as Extract<SupervisorEvent, { type: 'moved' }>;
    expect(moved).toMatchObject({ unit: 1, from: 'h2', to: 'h1' });
    // Checkpoints were mirrored home after each commit until the host vanished: it resumes from one of them.
    expect(moved.resumeStep).toBeGreaterThanOrEqual(4);
    const unit1 = w.run.units[1]!;
    expect(unit1.attempts.map((a) => a.state)).toEqual(['lost', 'succeeded']);
    expect(unit1.moved_from).toEqual(['h2']);
    const home = w.backend.home.get(unitKey(w.run, 1))!;
    const lost = w.journal.entries.filter((e) => e.type === 'ckpt.lost').map((e) => e.step as number);
    for (const step of lost) expect(home.has(step) && step <= moved.resumeStep!).toBe(false);
    expect(w.backend.violations).toEqual([]);
  });

  it('settles a lost attempt from what its runner copied to the store: claimed, and events no poll delivered recorded once', async () => {
    const w = world({ units: 2, hosts: { h1: {}, h2: { vanishAt: 5500 } }, plan: () => ok(60_000) });
    const unit = unitKey(w.run, 1);
    const commit = (step: number) => ({ type: 'ckpt.committed' as const, step, manifest: `m${step}`, manifest_sha256: 'x' });
    // The runner committed 1..5 and then pruned step 1 just before its host went away.
    w.journal.stored.set(`${unit}#1`, [commit(1), commit(2), commit(3), commit(4), commit(5), { type: 'ckpt.pruned', step: 1 }, { type: 'notice', line: 'old news' }]);
    await onClock(w.clock, w.supervisor.drive());
    expect(w.run.units[1]!.attempts.map((a) => a.state)).toEqual(['lost', 'succeeded']);
    expect(w.journal.claims.get(unit)).toBe(2);
    expect(w.journal.sealed).toEqual([{ attempt: `${unit}#1`, claim: 2 }]); // after the claim: no runner writes there any more
    const shard1 = (type: string) => w.journal.entries.filter((e) => e.type === type && e.shard === 1);
    const attempt1 = shard1('ckpt.committed').slice(0, 5).map((e) => e.step);
    expect(attempt1).toEqual([1, 2, 3, 4, 5]); // each once, whether a poll or the store delivered it
    expect(shard1('ckpt.pruned').map((e) => e.step)).toEqual([1]);
    expect(w.events.some((e) => e.type === 'notice' && e.line === 'old news')).toBe(false);
  });

  it('takes no units on a host that answers but cannot prepare; they go to the others', async () => {
    const w = world({ units: 4, hosts: { h1: {}, h2: { refuses: true } }, plan: () => ok() });
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w)).toEqual(Array(4).fill('succeeded'));
    expect(w.run.units.every((u) => u.attempts.every((a) => a.handle!.host === 'h1'))).toBe(true);
    expect(w.events.some((e) => e.type === 'slot-refused' && e.slot === 'h2')).toBe(true);
  });

  it('fails a lone unit over to the next backend of the run when its only host is lost', async () => {
    const w = world({ units: 1, backends: ['ssh', 'local'], hosts: { vast: { vanishAt: 3500 } }, others: { local: { local: {} } }, plan: () => ok(10_000) });
    await onClock(w.clock, w.supervisor.drive());
    const [a1, a2] = w.run.units[0]!.attempts;
    expect([a1!.backend, a1!.state, a2!.backend, a2!.state]).toEqual(['ssh', 'lost', 'local', 'succeeded']);
    expect(w.events.find((e) => e.type === 'moved')).toMatchObject({ from: 'vast', to: 'local' });
  });

  it('a submit that returns after its slot went down ends what it started lost, and the unit moves on', async () => {
    // h1 stops answering as the first submit leaves; each tick's retry fails until the slot is
    // lost, and the retry in flight then returns, started, after the blip has ended.
    const w = world({ units: 2, hosts: { h1: { blips: [[10, LOST_AFTER + 20]] }, h2: {} }, plan: () => ok() });
    await onClock(w.clock, w.supervisor.drive(), 10 * 60_000);
    const [a1, a2] = w.run.units[0]!.attempts;
    expect([a1!.handle!.host, a1!.state, a2!.handle!.host, a2!.state]).toEqual(['h1', 'lost', 'h2', 'succeeded']);
    expect(w.journal.claims.get(unitKey(w.run, 0))).toBe(2); // settled as slotDown settles: h1's runner stops writing
    expect(w.events.find((e) => e.type === 'moved')).toMatchObject({ unit: 0, from: 'h1', to: 'h2' });
    const ended = w.journal.entries.filter((e) => e.type === 'attempt.ended' && e.shard === 0).map((e) => [e.attempt, e.state]);
    expect(ended).toEqual([[1, 'lost'], [2, 'succeeded']]);
  });

  it('a submit that fails after its slot went down moves its unit to the open slot, under the next attempt number', async () => {
    const w = world({ units: 2, hosts: { h1: { vanishAt: 10 }, h2: {} }, plan: () => ok() });
    await onClock(w.clock, w.supervisor.drive(), 10 * 60_000);
    expect(w.supervisor.stranded()).toEqual([]);
    // The failed submit may have started attempt 1 on h1 before the host went away: its number runs nowhere else.
    expect(w.run.units[0]!.attempts.map((a) => [a.n, a.slot, a.handle?.host ?? null, a.state])).toEqual([[1, 'h1', null, 'lost'], [2, 'h2', 'h2', 'succeeded']]);
    expect(w.run.units[0]!.moved_from).toEqual(['h1']);
    expect(w.backend.violations).toEqual([]);
  });

  it('a submit that fails after its slot stopped taking units moves its unit to the open slot', async () => {
    const plan = (unit: string, n: number): AttemptPlan => (n > 1 ? ok() : unit.endsWith('/0') ? { ms: 1000, end: 'preempted' } : unit.endsWith('/2') ? { ms: 3000, end: 'preempted' } : ok());
    const w = world({ units: 3, hosts: { h1: { capacity: 2 }, h2: {} }, plan });
    // Unit 0's retry on h1 is on its way for 5 s; meanwhile unit 2 ends there and h1 is found not answering, and refused.
    w.backend.reachable = async (slot) => slot !== 'h1' || w.clock.now() < 2500;
    void w.clock.sleep(2500).then(() => (w.backend.hosts.get('h1')!.refuses = true));
    const submitMany = w.backend.submitMany.bind(w.backend);
    w.backend.submitMany = async (subs) => {
      if (subs[0]!.slot === 'h1' && subs.some((x) => x.spec.attempt === 2)) await w.clock.sleep(5000);
      return submitMany(subs);
    };
    await onClock(w.clock, w.supervisor.drive(), 10 * 60_000);
    expect(w.events.find((e) => e.type === 'slot-refused')).toMatchObject({ slot: 'h1' });
    expect(w.supervisor.stranded()).toEqual([]);
    expect(w.run.units[0]!.attempts.map((a) => [a.slot, a.state])).toEqual([['h1', 'preempted'], ['h1', 'lost'], ['h2', 'succeeded']]);
  });

  it('gives up the number of an attempt whose submit may have started it when its unit moves: the next number runs elsewhere', async () => {
    // h1 starts attempt 1 of unit 0 but the answer never comes back (a timeout); h1 still
    // answers, so it is refused and unit 0 moves to h3.
    const w = world({ units: 2, hosts: { h1: {}, h2: {}, h3: {} }, plan: () => ok(20_000) });
    fenced(w);
    const submitMany = w.backend.submitMany.bind(w.backend);
    let timedOut = false;
    w.backend.submitMany = async (subs) => {
      const out = await submitMany(subs);
      if (subs[0]!.slot !== 'h1' || timedOut) return out;
      timedOut = true;
      throw new Error('h1: timed out after 61000 ms');
    };
    await onClock(w.clock, w.supervisor.drive());
    expect(w.backend.violations).toEqual([]);
    const unit0 = w.run.units[0]!;
    expect(unit0.attempts.map((a) => [a.n, a.slot, a.state])).toEqual([[1, 'h1', 'lost'], [2, 'h3', 'succeeded']]);
    expect(w.journal.claims.get(unitKey(w.run, 0))).toBe(2); // attempt 1's runner on h1 stops writing
    const ended = w.journal.entries.filter((e) => e.type === 'attempt.ended' && e.shard === 0).map((e) => [e.attempt, e.state]);
    expect(ended).toEqual([[1, 'lost'], [2, 'succeeded']]);
  });

  it('submits an attempt an orchestrator that died had queued again on the slot its submit went to', async () => {
    // Attempt 1 was lost on h1 and the unit moved to h2; attempt 2 went to h2, and the
    // orchestrator was killed before it saved the handle.
    const w = world({ units: 1, hosts: { h1: {}, h2: {} }, plan: (_u, n) => (n === 1 ? { ms: 0, end: 'lost' } : ok(20_000)) });
    w.run.sharded = true;
    const [h1] = await onClock(w.clock, w.backend.submitMany([{ spec: specFor(w.run)(0, 1), slot: 'h1' }]));
    await onClock(w.clock, w.backend.submitMany([{ spec: specFor(w.run)(0, 2), slot: 'h2' }]));
    const unit = w.run.units[0]!;
    unit.attempts.push({ ...queuedAttempt(1, 'fleet', 'h1'), handle: h1 as Handle, state: 'lost', ended_at: new Date(0).toISOString() });
    unit.attempts.push(queuedAttempt(2, 'fleet', 'h2'));
    unit.moved_from.push('h1');
    await onClock(w.clock, w.supervisor.drive());
    expect(w.backend.violations).toEqual([]);
    expect(w.backend.attempts.map((a) => `${a.spec.attempt}@${a.host}`)).toEqual(['1@h1', '2@h2']);
    expect(unit.attempts.map((a) => [a.n, a.handle?.host, a.state])).toEqual([[1, 'h1', 'lost'], [2, 'h2', 'succeeded']]);
  });

  it('re-attaches to an attempt an earlier orchestrator left; one that had already failed is run again', async () => {
    const w = world({ units: 1, hosts: { h1: {} }, plan: (_u, n) => (n === 1 ? { ms: 1000, end: 'failed' } : ok()) });
    // Attempt 1 was started (and failed) while nobody followed the run.
    await leftRunning(w);
    await onClock(w.clock, w.clock.sleep(2000)); // it has ended by the time anyone looks
    await onClock(w.clock, w.supervisor.drive());
    expect(w.run.units[0]!.attempts.map((a) => a.state)).toEqual(['failed', 'succeeded']);
    expect(w.events.find((e) => e.type === 'placed')).toMatchObject({ reattached: [{ unit: 0, slot: 'h1', attempt: 1 }] });
  });

  it('after a preemption, a unit whose backend stops answering goes to the next of its order that fits and answers', async () => {
    const w = world({ units: 1, backends: ['slurm', 'fleet', 'ssh'], hosts: { hpc: {} }, others: { fleet: { f1: {} }, ssh: { vast: {} } }, plan: (_u, n) => (n === 1 ? { ms: 2000, end: 'preempted', commitEveryMs: 500 } : ok()) });
    // the run needs a GPU: the fleet has none, the ssh host has one
    w.run.spec = { ...w.run.spec, resources: { gpus: 1, spot: false } } as RunRecord['spec'];
    for (const b of [w.backend, w.others.get('ssh')!]) Object.assign(b, { capabilities: { gpus: 1, spot: false, shards: true } });
    w.backend.reachable = async () => w.clock.now() < 2000; // the cluster's controller goes down with the preemption
    await onClock(w.clock, w.supervisor.drive());
    const [a1, a2] = w.run.units[0]!.attempts;
    expect([a1!.backend, a1!.state, a2!.backend, a2!.state]).toEqual(['slurm', 'preempted', 'ssh', 'succeeded']);
    expect(w.events.find((e) => e.type === 'moved')).toMatchObject({ from: 'hpc', to: 'ssh:vast', resumeStep: 4 });
    expect(w.others.get('fleet')!.attempts).toHaveLength(0);
    // the first retry goes at once
    expect(Date.parse(a2!.started_at) - Date.parse(a1!.ended_at!)).toBeLessThan(2 * TICK);
  });

  it('retries a failure only within retry_on_error', async () => {
    for (const [retry, states] of [[undefined, ['failed']], [1, ['failed', 'succeeded']]] as const) {
      const w = world({ units: 1, hosts: { h1: {} }, plan: (_u, n) => (n === 1 ? { ms: 1000, end: 'failed' } : ok()) });
      w.run.spec = { ...w.run.spec, retry_on_error: retry } as RunRecord['spec'];
      await onClock(w.clock, w.supervisor.drive());
      expect(w.run.units[0]!.attempts.map((a) => a.state)).toEqual(states);
    }
  });

  it('backs off exponentially while attempts end without a new checkpoint', async () => {
    const w = world({ units: 1, hosts: { h1: {} }, plan: () => ({ ms: 1000, end: 'preempted' }), maxAttempts: 4 });
    await onClock(w.clock, w.supervisor.drive());
    const a = w.run.units[0]!.attempts;
    const gaps = a.slice(1).map((x, i) => Date.parse(x.started_at) - Date.parse(a[i]!.ended_at!));
    expect(gaps[0]).toBeLessThan(2000);
    expect(gaps[1]).toBeGreaterThanOrEqual(2000);
    expect(gaps[2]).toBeGreaterThanOrEqual(4000);
  });

  it('gives up after the attempt budget', async () => {
    const w = world({ units: 1, hosts: { h1: {} }, plan: () => ({ ms: 1000, end: 'preempted' }), maxAttempts: 3 });
    await onClock(w.clock, w.supervisor.drive());
    expect(w.run.units[0]!.attempts.map((a) => a.state)).toEqual(['preempted', 'preempted', 'preempted']);
    expect(w.events.some((e) => e.type === 'gave-up')).toBe(true);
  });

  it('polls 50 units on 3 hosts with one round trip per host per tick', async () => {
    const w = world({ units: 50, hosts: { h1: { capacity: 50 }, h2: { capacity: 50 }, h3: { capacity: 50 } }, plan: () => ok(10_000) });
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w).every((s) => s === 'succeeded')).toBe(true);
    for (const host of ['h1', 'h2', 'h3']) {
      const polls = w.backend.polls.filter((p) => p.slot === host);
      const ticks = new Set(polls.map((p) => Math.floor(p.at / TICK)));
      expect(polls.length).toBe(ticks.size); // never two round trips to one host in a tick
      expect(Math.max(...polls.map((p) => p.n))).toBeGreaterThanOrEqual(16); // every unit of the host in one call
    }
  });

  it('saves the record about once a tick, however many checkpoints and hosts, and never leaves a checkpoint unsaved for two ticks', async () => {
    // The hosts answer at different times in each tick: each round of polls is a drain of its own.
    const hosts = { h1: { capacity: 20, pollMs: 50 }, h2: { capacity: 20, pollMs: 300 }, h3: { capacity: 20, pollMs: 600 } };
    const w = world({ units: 60, hosts, plan: () => ok(20_000) });
    const saves: { at: number; steps: number }[] = [];
    const commits: number[] = [];
    const { save, record } = w.journal;
    w.journal.save = async (run) => {
      saves.push({ at: w.clock.now(), steps: stepsOf(run) });
      return save.call(w.journal, run);
    };
    w.journal.record = async (type, fields) => {
      if (type === 'ckpt.committed') commits.push(w.clock.now());
      return record.call(w.journal, type, fields);
    };
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w).every((s) => s === 'succeeded')).toBe(true);
    expect(commits.length).toBeGreaterThanOrEqual(60 * 15);
    // A save a tick over the ~21 ticks, and a few for the starts and the ends: 103 when each
    // checkpoint saved, 44 when each drain did.
    const ticks = Math.ceil(w.clock.now() / TICK);
    expect(saves.length).toBeLessThanOrEqual(ticks + 6);
    for (const at of commits) expect(saves.some((s) => s.at >= at && s.at - at < 2 * TICK)).toBe(true);
    expect(saves.at(-1)!.steps).toBe(stepsOf(w.run));
  });

  it('shows its listener every unit about once a tick, and at once when units start or end', async () => {
    const hosts = { h1: { capacity: 20, pollMs: 50 }, h2: { capacity: 20, pollMs: 300 }, h3: { capacity: 20, pollMs: 600 } };
    const w = world({ units: 60, hosts, plan: () => ok(20_000) });
    await onClock(w.clock, w.supervisor.drive());
    const views = w.events.filter((e) => e.type === 'tick') as (Extract<SupervisorEvent, { type: 'tick' }> & { at: number })[];
    const ticks = Math.ceil(w.clock.now() / TICK);
    // The loop went round once per host's answers (three times a tick): a view each time was 60+.
    expect(views.length).toBeLessThanOrEqual(ticks + 8);
    // The view that shows every unit running comes as the last of them starts (a detaching launch waits for it).
    const lastStart = Math.max(...w.events.filter((e) => e.type === 'started').map((e) => e.at));
    expect(views.find((v) => v.units.every((u) => u.state === 'running'))!.at).toBe(lastStart);
  });

  it('saves once for a round of starts and once for a round of ends, and records each end only after a save that holds it', async () => {
    // No checkpoints: only the starts and the ends change the record.
    const w = world({ units: 60, hosts: { h1: { capacity: 20 }, h2: { capacity: 20 }, h3: { capacity: 20 } }, plan: () => ({ ms: 5000, end: 'succeeded' }) });
    // What the last save held: each attempt's state and whether it had a handle.
    let saved = new Map<string, { state: string; handle: boolean }>();
    let saves = 0;
    const { save, record } = w.journal;
    w.journal.save = async (run) => {
      saves++;
      saved = new Map(run.units.flatMap((u) => u.attempts.map((a) => [`${u.index}#${a.n}`, { state: a.state, handle: a.handle !== null }] as const)));
      return save.call(w.journal, run);
    };
    const unsaved: string[] = [];
    w.journal.record = async (type, fields) => {
      const key = `${fields.shard}#${fields.attempt}`;
      if (type === 'attempt.ended' && !TERMINAL.has(saved.get(key)?.state as never)) unsaved.push(`ended ${key}`);
      return record.call(w.journal, type, fields);
    };
    const sink = w.events.push.bind(w.events);
    w.events.push = (...es) => {
      for (const e of es) if (e.type === 'started' && !saved.get(`${e.unit}#${e.attempt}`)?.handle) unsaved.push(`started ${e.unit}#${e.attempt}`);
      return sink(...es);
    };
    // Each pull takes a while: the hosts' pulls go at once, a host's one after another.
    const pulling = new Map<string, number>();
    let mostAtOnce = 0;
    let mostOnAHost = 0;
    const pull = w.backend.pull.bind(w.backend);
    w.backend.pull = async (handle) => {
      const host = String(handle.host);
      pulling.set(host, (pulling.get(host) ?? 0) + 1);
      mostOnAHost = Math.max(mostOnAHost, pulling.get(host)!);
      mostAtOnce = Math.max(mostAtOnce, [...pulling.values()].reduce((a, b) => a + b, 0));
      await w.clock.sleep(500);
      pulling.set(host, pulling.get(host)! - 1);
      return pull(handle);
    };
    await onClock(w.clock, w.supervisor.drive());
    expect(finalStates(w).every((s) => s === 'succeeded')).toBe(true);
    expect(unsaved).toEqual([]);
    // One save for the queued attempts, at most one per host's submit and one per host's round of ends (66 before).
    expect(saves).toBeLessThanOrEqual(1 + 3 + 3);
    expect(mostAtOnce).toBeGreaterThan(1);
    expect(mostOnAHost).toBe(1);
    const lastEnd = Math.max(...w.events.filter((e) => e.type === 'ended').map((e) => e.at));
    expect(lastEnd).toBeLessThan(5000 + 60 * 500); // the 60 pulls of 0.5 s one after another
  });

  it('never lets a slow host hold up the others', async () => {
    const w = world({ units: 2, hosts: { slow: { pollMs: 8000 }, fast: {} }, plan: (u) => (u.endsWith('/1') ? ok(3000) : ok(40_000)) });
    await onClock(w.clock, w.supervisor.drive());
    const fastEnd = w.events.find((e) => e.type === 'ended' && e.unit === 1)!;
    expect(fastEnd.at).toBeLessThanOrEqual(3000 + 2 * TICK);
  });

  it('stopped in the middle of a poll and taken over meanwhile, it writes nothing of its stale view when it wakes', async () => {
    let takenOver = false;
    const w = world({ units: 1, hosts: { h1: {} }, plan: () => ok(20_000), stillOwner: async () => !takenOver });
    const record = w.journal.record.bind(w.journal);
    w.journal.record = async (type, fields) => {
      await record(type, fields);
      if (type !== 'ckpt.committed' || w.journal.entries.filter((e) => e.type === type).length !== 3) return;
      // Stopped between taking a checkpoint's event and saving the record: another process
      // took the run over, ran it to its end and saved its record before this one woke.
      w.clock.pass(60_000);
      takenOver = true;
    };
    let savedAfter = 0;
    const save = w.journal.save.bind(w.journal);
    w.journal.save = async (run) => {
      if (takenOver) savedAfter++;
      return save(run);
    };
    await onClock(w.clock, w.supervisor.drive());
    expect(w.supervisor.isDetached).toBe(true);
    expect(savedAfter).toBe(0);
    expect(w.journal.entries.filter((e) => e.type === 'attempt.ended')).toEqual([]);
  });

  it('stops: live attempts are cancelled and nothing new starts', async () => {
    const w = world({ units: 4, hosts: { h1: {}, h2: {} }, plan: () => ok(60_000) });
    const driving = w.supervisor.drive();
    void w.clock.sleep(5000).then(() => w.supervisor.stop());
    await onClock(w.clock, driving);
    expect(w.run.units.map((u) => u.attempts.at(-1)?.state ?? null)).toEqual(['cancelled', 'cancelled', null, null]);
  });

  it('stopped before it has placed its units, it stops the attempt it then finds running', async () => {
    const w = world({ units: 1, hosts: { h1: {} }, plan: () => ok(60_000) });
    // Attempt 1 was started by a shell that detached; the process taking it over is asked to stop as it opens the run.
    await leftRunning(w);
    w.supervisor.stop();
    await onClock(w.clock, w.supervisor.drive());
    expect(w.run.units[0]!.attempts.map((a) => a.state)).toEqual(['cancelled']);
    expect(w.clock.now()).toBeLessThan(60_000);
  });

  it('a stop to kill now that comes while a submit is on its way kills what that submit started', async () => {
    const w = world({ units: 1, hosts: { h1: { pollMs: 2000 } }, plan: () => ok(60_000) });
    const driving = w.supervisor.drive();
    void w.clock.sleep(500).then(() => w.supervisor.stop({ force: true })); // the submit takes 2 s
    await onClock(w.clock, driving);
    expect(w.backend.cancels).toEqual([{ unit: w.run.run_id, force: true }]);
    expect(w.run.units[0]!.attempts.map((a) => a.state)).toEqual(['cancelled']);
  });

  it('a stop finds the attempt a submit whose answer was lost had started, and stops it; one never sent stays unstarted', async () => {
    const w = world({ units: 2, hosts: { h1: { capacity: 2 } }, plan: () => ok(60_000) });
    // Both recorded queued on h1, then the launcher died: unit 0's submit had reached the host, unit 1's had not.
    for (const u of w.run.units) u.attempts.push(queuedAttempt(1, 'fleet', 'h1'));
    await onClock(w.clock, w.backend.submitMany([{ spec: specFor(w.run)(0, 1), slot: 'h1' }]));
    const stopper = new Supervisor({ run: w.run, backend: w.backend, openBackend: async () => w.backend, journal: w.journal, specFor: specFor(w.run), maxAttempts: 0, clock: w.clock });
    await onClock(w.clock, stopper.follow({ stop: {} }));
    expect(w.backend.finds).toEqual([{ slot: 'h1', units: [unitKey(w.run, 0)] }, { slot: 'h1', units: [unitKey(w.run, 1)] }]);
    expect(w.backend.cancels).toEqual([{ unit: unitKey(w.run, 0), force: false }]);
    expect(w.backend.attempts).toHaveLength(1);
    expect(w.run.units.map((u) => u.attempts.map((a) => a.state))).toEqual([['cancelled'], ['queued']]);
    expect(w.journal.entries.filter((e) => e.type === 'attempt.started').map((e) => e.shard)).toEqual([0]);
  });

  it('a stop whose look for a sent attempt gets no answer says it could not ask, and leaves the attempt as recorded', async () => {
    const w = world({ units: 1, hosts: { h1: { vanishAt: 0 } }, plan: () => ok(60_000) });
    w.run.units[0]!.attempts.push(queuedAttempt(1, 'fleet', 'h1'));
    const notices: string[] = [];
    const stopper = new Supervisor({ run: w.run, backend: w.backend, openBackend: async () => w.backend, journal: w.journal, specFor: specFor(w.run), maxAttempts: 0, clock: w.clock, sink: (e) => e.type === 'notice' && notices.push(e.line) });
    await onClock(w.clock, stopper.follow({ stop: {} }));
    expect(notices).toEqual(['could not ask it to stop: its submit to h1 may have started it, and looking there failed: h1: connect timeout']);
    expect(w.run.units[0]!.attempts.map((a) => a.state)).toEqual(['queued']);
  });

  it('a stop of some units, followed from here, stops those only: the others run on', async () => {
    const w = world({ units: 3, hosts: { h1: { capacity: 3 } }, plan: () => ok(60_000) });
    const handles = await onClock(w.clock, w.backend.submitMany(w.run.units.map((u) => ({ spec: specFor(w.run)(u.index, 1), slot: 'h1' }))));
    for (const [i, u] of w.run.units.entries()) u.attempts.push({ ...queuedAttempt(1, 'fleet', 'h1'), handle: handles[i] as Handle, state: 'running' });
    const stopper = new Supervisor({ run: w.run, backend: w.backend, openBackend: async () => w.backend, journal: w.journal, specFor: specFor(w.run), maxAttempts: 0, clock: w.clock, only: [1] });
    await onClock(w.clock, stopper.follow({ stop: {} }));
    expect(w.backend.cancels.map((c) => c.unit)).toEqual([unitKey(w.run, 1)]);
    expect(w.run.units.map((u) => u.attempts.at(-1)!.state)).toEqual(['running', 'cancelled', 'running']);
  });

  it('keeps its invariants over 200 random schedules', async () => {
    let seed = 42;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
    for (let trial = 0; trial < 200; trial++) {
      const hostCount = 1 + Math.floor(rand() * 4);
      const hosts: Record<string, Partial<FakeHost>> = {};
      for (let h = 1; h <= hostCount; h++) {
        const t0 = Math.floor(rand() * 60_000);
        hosts[`h${h}`] = {
          capacity: 1 + Math.floor(rand() * 3),
          pollMs: pick([20, 200, 3000]),
          blips: rand() < 0.4 ? [[t0, t0 + Math.floor(rand() * (LOST_AFTER / 2))]] : [],
          vanishAt: h > 1 && rand() < 0.25 ? Math.floor(rand() * 80_000) : null,
        };
      }
      const plans = new Map<string, AttemptPlan>();
      const plan = (unit: string, attempt: number) => {
        const key = `${unit}#${attempt}`;
        if (!plans.has(key)) plans.set(key, { ms: 1000 + Math.floor(rand() * 40_000), end: pick(['succeeded', 'succeeded', 'succeeded', 'preempted', 'lost', 'failed']), commitEveryMs: pick([undefined, 2000]) });
        return plans.get(key)!;
      };
      const maxAttempts = 1 + Math.floor(rand() * 4);
      const w = world({ units: 1 + Math.floor(rand() * 8), hosts, plan, maxAttempts });
      await onClock(w.clock, w.supervisor.drive());
      const where = `trial ${trial}`;
      expect(w.backend.violations, where).toEqual([]);
      for (const u of w.run.units) {
        expect(u.attempts.length, where).toBeLessThanOrEqual(maxAttempts);
        // every attempt ended, exactly once, and only the last may be anything but a resumable end
        for (const a of u.attempts) expect(TERMINAL.has(a.state) || a.state === 'queued', `${where} unit ${u.index}: ${a.state}`).toBe(true);
        const ends = w.events.filter((e) => e.type === 'ended' && e.unit === u.index);
        expect(ends.length, where).toBe(u.attempts.filter((a) => TERMINAL.has(a.state)).length);
        expect(new Set(ends.map((e) => (e as { attempt: number }).attempt)).size, where).toBe(ends.length);
        for (const a of u.attempts.slice(0, -1)) expect(['preempted', 'lost'], where).toContain(a.state);
      }
    }
  });
});
