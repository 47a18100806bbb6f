// The laptop: one slot, the runner inside this process (no second Node start-up on the hot
// path), the experiment in its own process group beside it. Another shell finds an attempt
// through its handle: the orchestrator's pid (with its start time, against pid reuse) and the
// work folder the runner writes its status and events to.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { isAlive, processStartTime } from '../process-alive.js';
import type { Store } from '../store/store.js';
import { runKeys } from '../store/run-keys.js';
import { EVENTS_FILE, STOP_REQUEST, TERMINAL, type AttemptSpec, type AttemptStatus, type RunnerEvent } from '../runner/attempt-spec.js';
import { AttemptRunner, workPaths } from '../runner/attempt-runner.js';
import { lastJsonLine, parseEventLines } from '../runner/jsonl.js';
import { settleAttempt } from '../runner/work-tidy.js';
import type { Backend, Capabilities, Handle, PollRequest, PollResult, Submission } from './backend.js';

const LocalHandle = z.object({
  backend: z.literal('local'),
  pid: z.number().int(),
  /** process start time from /proc, so a reused pid is not mistaken for our runner */
  pid_start: z.string().nullable(),
  run_id: z.string(),
  /** the unit's name in the store (absent in handles written before units) */
  unit: z.string().optional(),
  work_dir: z.string(),
  attempt: z.union([z.number().int(), z.literal('predict')]),
});
type LocalHandle = z.infer<typeof LocalHandle>;

export interface LocalBackendOptions {
  root: string;
  store: Store;
  workDir: (unit: string) => string;
  echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
}

export const LOCAL_SLOT = 'local';

/** GPUs this machine shows (/dev/nvidia0, /dev/nvidia1, ...). */
function localGpus(): number {
  try {
    return readdirSync('/dev').filter((f) => /^nvidia\d+$/.test(f)).length;
  } catch {
    return 0;
  }
}

interface Entry {
  runner: AttemptRunner;
  /** true once the runner has stored its outputs and files, not when its state turns final */
  settled: boolean;
}

export class LocalBackend implements Backend {
  readonly name = 'local' as const;
  readonly title = 'local';
  readonly kind = 'placer' as const;
  readonly capabilities: Capabilities = { gpus: localGpus(), spot: false, shards: false };
  readonly attemptsInProcess = true;
  readonly workersReachStore = true;
  private readonly runners = new Map<string, Entry>();
  /** resolvers of waitForChange calls, fired when an in-process attempt settles */
  private waiters: (() => void)[] = [];
  /** an attempt settled since the last poll: the next wait returns at once (a settle between two waits is not missed) */
  private settledUnpolled = false;

  constructor(private readonly opts: LocalBackendOptions) {}

  private key(h: { run_id: string; unit?: string; attempt: number | 'predict' }) {
    return `${h.unit ?? h.run_id}/${h.attempt}`;
  }

  slots() {
    return [{ name: LOCAL_SLOT, capacity: 1 }];
  }

  /** A local attempt is lost when its orchestrator is gone, which a poll sees at once. */
  lostAfterMs(): number {
    return 0;
  }

  slotOf(): string {
    return LOCAL_SLOT;
  }

  async prepare(slots: readonly string[]): Promise<Map<string, Error | null>> {
    return new Map(slots.map((s) => [s, null]));
  }

  async submitMany(subs: readonly Submission[]): Promise<Handle[]> {
    return subs.map(({ spec }) => this.start(spec));
  }

  private start(spec: AttemptSpec): LocalHandle {
    const workDir = this.opts.workDir(spec.unit_id);
    const handle: LocalHandle = { backend: 'local', pid: process.pid, pid_start: processStartTime(process.pid), run_id: spec.run_id, unit: spec.unit_id, work_dir: workDir, attempt: spec.attempt };
    const key = this.key(handle);
    if (this.runners.has(key)) return handle;
    const entry: Entry = { runner: new AttemptRunner(spec, { root: this.opts.root, workDir, store: this.opts.store, echo: this.opts.echo }), settled: false };
    this.runners.set(key, entry);
    void entry.runner.run().finally(() => {
      entry.settled = true;
      this.settledUnpolled = true;
      for (const wake of this.waiters.splice(0)) wake();
    });
    return handle;
  }

  /** Resolves when an in-process attempt settles, or after `ms`. */
  async waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.settledUnpolled || signal?.aborted) return;
    // The timer is cleared when a change or the caller comes first: a pending one would hold the process open.
    const timer = new AbortController();
    const stop = () => timer.abort();
    signal?.addEventListener('abort', stop, { once: true });
    let wake = () => {};
    const changed = new Promise<void>((r) => this.waiters.push((wake = r)));
    await Promise.race([sleep(ms, undefined, { signal: timer.signal }).catch(() => {}), changed]);
    timer.abort();
    signal?.removeEventListener('abort', stop);
    this.waiters = this.waiters.filter((w) => w !== wake);
  }

  async pollMany(reqs: readonly PollRequest[]): Promise<PollResult[]> {
    this.settledUnpolled = false; // this poll sees every attempt that has settled
    return Promise.all(reqs.map((r) => this.poll(LocalHandle.parse(r.handle), r.eventsFrom)));
  }

  async poll(h: LocalHandle, eventsFrom = 0): Promise<PollResult> {
    const dir = workPaths(h.work_dir, h.attempt).attempt;
    const mine = this.runners.get(this.key(h));
    // A finished attempt's folder may be tidied away (pull): its status is in the store then.
    const stored = () => this.opts.store.getBytes(runKeys.attemptFile(h.unit ?? h.run_id, h.attempt, 'status.json')).then((b) => b?.toString('utf8') ?? 'null');
    const status: AttemptStatus | null = mine
      ? mine.runner.status
      : (JSON.parse(await readFile(path.join(dir, 'status.json'), 'utf8').catch(stored)) as AttemptStatus | null);
    const events = parseEventLines<RunnerEvent>(await readFile(path.join(dir, EVENTS_FILE), 'utf8').catch(() => '')).slice(eventsFrom);
    const base = { exit_code: status?.exit_code ?? null, events, metrics: lastJsonLine(path.join(dir, 'metrics.jsonl')), last_line: null, unanswered: false };
    // An in-process runner's state turns final before its outputs are stored: wait for both.
    if (status && (!mine || mine.settled) && TERMINAL.has(status.state)) return { ...base, state: status.state, reason: status.reason };
    if (mine || isAlive(h.pid, h.pid_start)) return { ...base, state: 'running', reason: null };
    return { ...base, state: 'lost', reason: `the runner (pid ${h.pid}) is gone without a final status` };
  }

  async cancel(handle: Handle, opts: { force?: boolean; preempt?: boolean } = {}): Promise<void> {
    const h = LocalHandle.parse(handle);
    const own = this.runners.get(this.key(h))?.runner;
    if (own) return opts.force ? own.kill() : own.requestStop(opts.preempt ? 'preempt' : 'cancel');
    writeFileSync(path.join(workPaths(h.work_dir, h.attempt).attempt, STOP_REQUEST), `${new Date().toISOString()}\n`);
    if (isAlive(h.pid, h.pid_start)) process.kill(h.pid, 'SIGTERM');
  }

  async readAttemptFile(handle: Handle, name: 'metrics.jsonl'): Promise<Buffer | null> {
    const h = LocalHandle.parse(handle);
    return readFile(path.join(workPaths(h.work_dir, h.attempt).attempt, name)).catch(() => null);
  }

  async *logs(handle: Handle, opts: { follow: boolean; stream?: 'stdout' | 'stderr' }): AsyncIterable<string> {
    const h = LocalHandle.parse(handle);
    const name = `${opts.stream ?? 'stdout'}.log`;
    const file = path.join(workPaths(h.work_dir, h.attempt).attempt, name);
    if (!existsSync(file)) {
      const stored = await this.opts.store.getBytes(runKeys.attemptFile(h.unit ?? h.run_id, h.attempt, name));
      if (stored) yield stored.toString('utf8');
      return;
    }
    const fd = await open(file, 'r');
    try {
      let offset = 0;
      const buf = Buffer.alloc(1 << 16);
      for (;;) {
        const { bytesRead } = await fd.read(buf, 0, buf.length, offset);
        if (bytesRead > 0) {
          offset += bytesRead;
          yield buf.subarray(0, bytesRead).toString('utf8');
          continue;
        }
        if (!opts.follow || TERMINAL.has((await this.poll(h)).state)) {
          const { bytesRead: tail } = await fd.read(buf, 0, buf.length, offset);
          if (tail > 0) yield buf.subarray(0, tail).toString('utf8');
          return;
        }
        await sleep(300);
      }
    } finally {
      await fd.close();
    }
  }

  /**
   * The runner mirrors its files itself; after a lost attempt, salvage what the worker left.
   * Then the copies the store holds leave the work folder.
   */
  async pull(handle: Handle): Promise<void> {
    const h = LocalHandle.parse(handle);
    await settleAttempt(this.opts.store, h.work_dir, h.unit ?? h.run_id, h.attempt);
  }

  async pushCheckpoints(): Promise<void> {}

  async reachable(): Promise<boolean> {
    return true;
  }
}
