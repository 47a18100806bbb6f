// A scheduler names a submission by the attempts in it (a Batch job ID, a SLURM job name), so an
// attempt whose submit may have reached it must be submitted again only with exactly the
// attempts it went with: grouped otherwise, the same attempt would start a second time. Driven
// against a scripted scheduler that names its jobs with the real batchJobId and answers a job
// made before as Batch does (ALREADY_EXISTS: the same handles), on virtual time.
import { describe, expect, it } from 'vitest';
import { batchJobId } from '../../scripts/lib/batch/gcp-names.js';
import type { Backend, Capabilities, Handle, PollRequest, PollResult, Slot, Submission } from '../../scripts/lib/backends/backend.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import { parseRunJson, runJson, unitKey, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { Supervisor } from '../../scripts/lib/runs/supervisor.js';
import { demoRun, FakeClock, MemoryJournal, onClock } from '../helpers/fake-backend.js';

const RUN_MS = 5000;

interface Job {
  units: string[];
  createdAt: number;
}

/** One slot; each submit is one job named by its attempts; an attempt runs its unit's time and succeeds. */
class ScriptedScheduler implements Backend {
  readonly name = 'gcp-batch' as const;
  readonly title = 'gcp-batch scripted';
  readonly kind = 'scheduler' as const;
  readonly capabilities: Capabilities = { gpus: 0, spot: false, shards: true };
  readonly attemptsInProcess = false;
  readonly workersReachStore = true;
  readonly jobs = new Map<string, Job>();
  /** each (unit, attempt) started, with the job that started it */
  private readonly started = new Map<string, string>();
  readonly violations: string[] = [];
  /** what a submit does once its job exists: answer, never answer (its launcher was killed), or time out */
  afterCreate: 'answer' | 'hang' | 'time out' = 'answer';
  /** the API answers (false from a submit that timed out to the next submit) */
  private answering = true;
  /** fires when a job is made */
  onCreate: () => void = () => {};

  constructor(
    private readonly clock: FakeClock,
    public capacity: number,
    private readonly runMs: (unit: string) => number = () => RUN_MS,
  ) {}

  slots(): Slot[] {
    return [{ name: 'entry', capacity: this.capacity }];
  }

  lostAfterMs(): number {
    return 15 * 60_000;
  }

  slotOf(): string {
    return 'entry';
  }

  async prepare(slots: readonly string[]): Promise<Map<string, Error | null>> {
    return new Map(slots.map((s) => [s, null]));
  }

  async submitMany(subs: readonly Submission[]): Promise<Handle[]> {
    this.answering = true;
    const specs = subs.map((s) => s.spec);
    const id = batchJobId(specs);
    const units = specs.map((s) => `${s.unit_id}#${s.attempt}`);
    const made = this.jobs.get(id);
    if (made && made.units.join() !== units.join()) this.violations.push(`${id} submitted again with its tasks in another order`);
    if (!made) this.create(id, units);
    if (this.afterCreate === 'hang') await new Promise(() => {});
    if (this.afterCreate === 'time out') {
      this.afterCreate = 'answer';
      await this.clock.sleep(6000);
      this.answering = false;
      throw new Error('Batch: deadline exceeded');
    }
    return specs.map((s, task) => ({ backend: this.name, job: id, task, unit: s.unit_id, attempt: s.attempt }));
  }

  private create(id: string, units: string[]): void {
    for (const u of units) {
      const before = this.started.get(u);
      if (before) this.violations.push(`${u} started by job ${id} and by job ${before}`);
      this.started.set(u, id);
    }
    this.jobs.set(id, { units, createdAt: this.clock.now() });
    this.onCreate();
  }

  async findSubmitted(subs: readonly Submission[]): Promise<(Handle | null)[]> {
    const specs = subs.map((s) => s.spec);
    const id = batchJobId(specs);
    await this.clock.sleep(50);
    return specs.map((s, task) => (this.jobs.has(id) ? { backend: this.name, job: id, task, unit: s.unit_id, attempt: s.attempt } : null));
  }

  async pollMany(reqs: readonly PollRequest[]): Promise<PollResult[]> {
    await this.clock.sleep(50);
    return reqs.map(({ handle }) => {
      const job = this.jobs.get(String(handle.job))!;
      if (this.cancels.includes(`${String(handle.unit)}#${String(handle.attempt)}`)) return { state: 'cancelled', reason: 'make stop', exit_code: null, events: [], metrics: null, last_line: null, unanswered: false };
      const done = this.clock.now() >= job.createdAt + this.runMs(String(handle.unit));
      return { state: done ? 'succeeded' : 'running', reason: null, exit_code: done ? 0 : null, events: [], metrics: null, last_line: null, unanswered: false };
    });
  }

  /** each attempt asked to stop, as `unit#attempt`: it ends cancelled at its next poll */
  readonly cancels: string[] = [];

  async cancel(handle: Handle): Promise<void> {
    this.cancels.push(`${String(handle.unit)}#${String(handle.attempt)}`);
  }
  async *logs(): AsyncIterable<string> {}
  async pull(): Promise<void> {}
  async pushCheckpoints(): Promise<void> {}
  async reachable(): Promise<boolean> {
    return this.answering;
  }
}

/** The ledger, and the run record as last saved: what a launcher killed with kill -9 leaves. */
class DiskJournal extends MemoryJournal {
  onDisk = '';

  override async save(run: RunRecord): Promise<void> {
    await super.save(run);
    this.onDisk = runJson(run);
  }
}

function launcher(run: RunRecord, backend: ScriptedScheduler, journal: DiskJournal, clock: FakeClock, only?: number[]): Supervisor {
  const specFor = (unit: number, attempt: number) => ({ run_id: run.run_id, unit_id: unitKey(run, unit), attempt, shard_index: unit, shard_count: run.units.length }) as AttemptSpec;
  return new Supervisor({ run, backend, openBackend: async () => backend, journal, specFor, maxAttempts: 3, clock, tickMs: 1000, ...(only ? { only } : {}) });
}

/** A launcher that submits, and is killed once its submit has made the job, before it saves the handles. */
async function killedAfterSubmit(run: RunRecord, backend: ScriptedScheduler, journal: DiskJournal, clock: FakeClock): Promise<RunRecord> {
  backend.afterCreate = 'hang';
  const made = new Promise<void>((resolve) => (backend.onCreate = resolve));
  const first = launcher(run, backend, journal, clock);
  const driving = first.drive();
  await onClock(clock, made);
  first.detach(); // killed: it writes nothing more
  await onClock(clock, driving);
  backend.afterCreate = 'answer';
  backend.onCreate = () => {};
  return parseRunJson(journal.onDisk);
}

const attemptsOf = (run: RunRecord) => run.units.map((u) => u.attempts.map((a) => `${a.n} ${a.state}`));

describe('supervisor: a submit to a scheduler sent again after a crash or a failure', () => {
  it('after a launcher killed between submit and save, sends the same attempts again as they went, whatever the capacity now', async () => {
    const clock = new FakeClock();
    const backend = new ScriptedScheduler(clock, 4);
    const journal = new DiskJournal(new Map());
    const left = await killedAfterSubmit(demoRun(4, ['gcp-batch']), backend, journal, clock);
    expect(attemptsOf(left)).toEqual([['1 queued'], ['1 queued'], ['1 queued'], ['1 queued']]);
    backend.capacity = 2; // the entry's parallelism lowered before the restart
    await onClock(clock, launcher(left, backend, journal, clock).drive());
    expect(backend.violations).toEqual([]);
    expect(backend.jobs.size).toBe(1);
    expect(attemptsOf(left)).toEqual([['1 succeeded'], ['1 succeeded'], ['1 succeeded'], ['1 succeeded']]);
    expect(journal.entries.filter((e) => e.type === 'attempt.started')).toHaveLength(4);
  });

  it('sends a submit that timed out after the job was made again alone, not with units queued since', async () => {
    // Units 0 and 1 start together; 1 ends first, and unit 2 takes its place, but its submit
    // times out though its job was made; meanwhile unit 0 ends, so two units could go now: unit
    // 2 must still go alone, unit 3 after it.
    const clock = new FakeClock();
    const backend = new ScriptedScheduler(clock, 2, (unit) => (unit.endsWith('/1') ? 1500 : RUN_MS));
    const journal = new DiskJournal(new Map());
    const run = demoRun(4, ['gcp-batch']);
    let jobs = 0;
    backend.onCreate = () => {
      if (++jobs === 2) backend.afterCreate = 'time out';
    };
    await onClock(clock, launcher(run, backend, journal, clock).drive());
    expect(backend.violations).toEqual([]);
    expect([...backend.jobs.values()].map((j) => j.units.map((u) => u.split('/').at(-1)))).toEqual([['0#1', '1#1'], ['2#1'], ['3#1']]);
    expect(attemptsOf(run)).toEqual([['1 succeeded'], ['1 succeeded'], ['1 succeeded'], ['1 succeeded']]);
  });

  it('gives up the numbers of a group it cannot send again whole (a retry of some of its units): they start under the next', async () => {
    const clock = new FakeClock();
    const backend = new ScriptedScheduler(clock, 2);
    const journal = new DiskJournal(new Map());
    const left = await killedAfterSubmit(demoRun(2, ['gcp-batch']), backend, journal, clock);
    await onClock(clock, launcher(left, backend, journal, clock, [1]).drive());
    expect(backend.violations).toEqual([]);
    expect(attemptsOf(left)).toEqual([['1 queued'], ['1 lost', '2 succeeded']]);
    expect(journal.claims.get(unitKey(left, 1))).toBe(2); // attempt 1's runner in the first job stops writing
  });

  it('a stop finds the job a launcher killed between submit and save had made, and stops its attempts, starting nothing', async () => {
    const clock = new FakeClock();
    const backend = new ScriptedScheduler(clock, 2);
    const journal = new DiskJournal(new Map());
    const left = await killedAfterSubmit(demoRun(2, ['gcp-batch']), backend, journal, clock);
    await onClock(clock, launcher(left, backend, journal, clock).follow({ stop: {} }));
    expect(backend.cancels.map((c) => c.split('/').at(-1))).toEqual(['0#1', '1#1']);
    expect(backend.jobs.size).toBe(1);
    expect(attemptsOf(left)).toEqual([['1 cancelled'], ['1 cancelled']]);
    expect(journal.entries.filter((e) => e.type === 'attempt.started').map((e) => [e.shard, e.attempt])).toEqual([
      [0, 1],
      [1, 1],
    ]);
    expect(left.units[0]!.attempts[0]!.handle).toMatchObject({ job: [...backend.jobs.keys()][0], task: 0 });
  });

  it('a stop of attempts whose submit never reached the scheduler finds nothing, sends nothing, and leaves them unstarted', async () => {
    const clock = new FakeClock();
    const backend = new ScriptedScheduler(clock, 2);
    const journal = new DiskJournal(new Map());
    const left = await killedAfterSubmit(demoRun(2, ['gcp-batch']), backend, journal, clock);
    backend.jobs.clear(); // killed before its submit reached Batch
    const events: string[] = [];
    const stopper = new Supervisor({ run: left, backend, openBackend: async () => backend, journal, specFor: (unit, attempt) => ({ run_id: left.run_id, unit_id: unitKey(left, unit), attempt }) as AttemptSpec, maxAttempts: 0, clock, sink: (e) => events.push(e.type) });
    await onClock(clock, stopper.follow({ stop: {} }));
    expect(backend.jobs.size).toBe(0);
    expect(backend.cancels).toEqual([]);
    expect(attemptsOf(left)).toEqual([['1 queued'], ['1 queued']]);
    expect(journal.entries.filter((e) => e.type === 'attempt.started')).toEqual([]);
    expect(events).not.toContain('started');
  });
});
