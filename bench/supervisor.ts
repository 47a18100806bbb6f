// The supervisor's own cost per tick with 1,000 live units on 10 hosts (one poll round trip per
// host each tick, answered by a scripted backend, host h in the h-th turn of the event loop as
// real answers trickle in, checkpoints committed as they go),
// against its baseline in the same run: the same polls issued and answered with no supervisor
// around them. Target: at most 5 ms per tick. Also counted: the run record's saves per tick
// (a save writes the whole record, ~60 ms at 1,000 units, so a tick's 100 checkpoints must not
// each save it); target at most 1. And the saves from launch to end of 1,000 units that all end
// in the same tick (starts and ends are saved once a round, not once a unit); target at most 2
// a host.
import type { AttemptPlan } from '../test/helpers/fake-backend.js';
import type { BackendName } from '../scripts/lib/config/define-config.js';
import type { AttemptSpec } from '../scripts/lib/runner/attempt-spec.js';
import { runJson, unitKey, type RunRecord } from '../scripts/lib/runs/run-record.js';
import { Supervisor } from '../scripts/lib/runs/supervisor.js';
import { FakeBackend, FakeClock, MemoryJournal } from '../test/helpers/fake-backend.js';
import { median, now, sizeFromEnv } from './lib/measure.js';

const UNITS = sizeFromEnv('BENCH_UNITS', 1000);
const HOSTS = 10;
const TICKS = 200;
const ROUNDS = 5;
const TARGET_MS = 5;
const TURNS_PER_TICK = 2 * HOSTS;

/**
 * Virtual time: a sleep of the loop's tick passes after TURNS_PER_TICK turns of the event loop
 * (an aborted one passes none), so the hosts' staggered answers all come within the tick; the
 * backend's own sleeps (0 ms) take one turn.
 */
class RushClock extends FakeClock {
  override sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let turns = ms === 0 ? 1 : TURNS_PER_TICK;
      const turn = () => {
        if (signal?.aborted) return resolve();
        if (--turns > 0) return void setImmediate(turn);
        this.t += ms;
        resolve();
      };
      setImmediate(turn);
    });
  }
}

// Each attempt runs far longer than the measured ticks and commits a checkpoint every 10 ticks.
const longRunning = (): AttemptPlan => ({ ms: 1e12, end: 'succeeded', commitEveryMs: 10_000 });

function world(plan: () => AttemptPlan = longRunning) {
  const clock = new RushClock();
  const home = new Map<string, Set<number>>();
  const hosts = new Map(Array.from({ length: HOSTS }, (_, i) => [`h${i}`, FakeBackend.host({ capacity: UNITS / HOSTS, pollMs: 0 })]));
  const backend = new FakeBackend('fleet' as BackendName, clock, hosts, plan, home, true);
  // Host h answers h turns of the event loop later: each host's round is a drain of its own.
  const pollMany = backend.pollMany.bind(backend);
  backend.pollMany = async (reqs) => {
    const results = await pollMany(reqs);
    for (let turns = Number(String(reqs[0]!.handle.host).slice(1)); turns > 0; turns--) await new Promise(setImmediate);
    return results;
  };
  const run: RunRecord = {
    run_id: 'bench-default-20261130T1200-0badf00d', experiment: 'bench', created_at: '', pins: {} as RunRecord['pins'], spec: {} as RunRecord['spec'],
    command: { train: 'true', predict: null }, backends: ['fleet'], replay_of: null, sharded: true,
    units: Array.from({ length: UNITS }, (_, index) => ({ index, attempts: [], moved_from: [] })),
  };
  return { clock, backend, run, journal: new SerializingJournal(home) };
}

/** Saves as the real journal does in-process: the record serialized (it is then written to the store and the index). */
class SerializingJournal extends MemoryJournal {
  override async save(run: RunRecord): Promise<void> {
    runJson(run);
    await super.save(run);
  }
}

/** Seconds per tick (of the clock: a tick's rounds of polls are several loops) once every unit runs, and the record's saves per tick. */
async function supervised(): Promise<{ s: number; saves: number }> {
  const { clock, backend, run, journal } = world();
  let from: { t: number; at: number; saved: number } | null = null;
  let supervisor: Supervisor;
  supervisor = new Supervisor({
    run, backend, openBackend: async () => backend, journal, clock, tickMs: 1000, maxAttempts: 3,
    specFor: (unit, attempt) => ({ run_id: run.run_id, unit_id: unitKey(run, unit), attempt }) as AttemptSpec,
    sink: (e) => {
      if (e.type !== 'tick' || !e.units.every((u) => u.state === 'running')) return;
      from ??= { t: now(), at: clock.now(), saved: journal.saved };
      if (clock.now() - from.at >= TICKS * 1000) supervisor.detach();
    },
  });
  await supervisor.drive();
  const ticks = (clock.now() - from!.at) / 1000;
  return { s: (now() - from!.t) / ticks, saves: (journal.saved - from!.saved) / ticks };
}

/** Record saves and seconds from launch to end of every unit, all ending in the same tick. */
async function launchToEnd(): Promise<{ s: number; saves: number }> {
  const { clock, backend, run, journal } = world(() => ({ ms: 5000, end: 'succeeded' }));
  const supervisor = new Supervisor({
    run, backend, openBackend: async () => backend, journal, clock, tickMs: 1000, maxAttempts: 3,
    specFor: (unit, attempt) => ({ run_id: run.run_id, unit_id: unitKey(run, unit), attempt }) as AttemptSpec,
  });
  const t0 = now();
  await supervisor.drive();
  if (!run.units.every((u) => u.attempts.at(-1)?.state === 'succeeded')) throw new Error('launchToEnd: not every unit succeeded');
  return { s: now() - t0, saves: journal.saved };
}

/** Seconds per tick of the same polls alone. */
async function pollsAlone(): Promise<number> {
  const { clock, backend, run } = world();
  const handles = (await Promise.all(backend.slots().map((s, h) => backend.submitMany(run.units.filter((u) => u.index % HOSTS === h).map((u) => ({ spec: { run_id: run.run_id, unit_id: unitKey(run, u.index), attempt: 1 } as AttemptSpec, slot: s.name })))))).map((hs) => hs as { backend: BackendName }[]);
  const read = handles.map((hs) => hs.map(() => 0));
  const t0 = now();
  for (let t = 0; t < TICKS; t++) {
    await Promise.all(handles.map(async (hs, h) => {
      const results = await backend.pollMany(hs.map((handle, i) => ({ handle, eventsFrom: read[h]![i]! })));
      results.forEach((r, i) => (read[h]![i]! += r.events.length));
    }));
    await clock.sleep(1000);
  }
  return (now() - t0) / TICKS;
}

const sup: number[] = [];
const base: number[] = [];
const lifetimes: number[] = [];
let saves = 0;
let lifetimeSaves = 0;
for (let r = 0; r < ROUNDS; r++) {
  const round = await supervised();
  sup.push(round.s);
  saves = Math.max(saves, round.saves);
  base.push(await pollsAlone());
  const life = await launchToEnd();
  lifetimes.push(life.s);
  lifetimeSaves = Math.max(lifetimeSaves, life.saves);
}
const s = median(sup) * 1000;
const b = median(base) * 1000;
console.log(`supervisor tick, ${UNITS} live units on ${HOSTS} hosts (median of ${ROUNDS} x ${TICKS} ticks)`);
console.log(`  polls alone (baseline)   ${b.toFixed(2)} ms per tick`);
console.log(`  supervisor               ${s.toFixed(2)} ms per tick (${(s / b).toFixed(1)}x the polls alone)`);
console.log(`  target: at most ${TARGET_MS} ms per tick: ${s <= TARGET_MS ? 'MET' : 'MISSED'}`);
console.log(`  record saves per tick   ${saves.toFixed(2)} (the most of any round; ~${UNITS / 10} checkpoints a tick)   target: at most 1: ${saves <= 1 ? 'MET' : 'MISSED'}`);
const lifetimeTarget = 2 * HOSTS;
console.log(`  launch to end, all ending in one tick   ${lifetimeSaves} record saves (the most of any round), ${(median(lifetimes) * 1000).toFixed(0)} ms   target: at most ${lifetimeTarget}: ${lifetimeSaves <= lifetimeTarget ? 'MET' : 'MISSED'}`);
if (s > TARGET_MS || saves > 1 || lifetimeSaves > lifetimeTarget) process.exitCode = 1;
