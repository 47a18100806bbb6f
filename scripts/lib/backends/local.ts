// The laptop: one slot, the runner inside this process (no second Node start-up on the hot
// path), the experiment in its own process group beside it. Another shell finds an attempt
// through its handle: the orchestrator's pid (with its start time, against pid reuse) and the
// work folder the runner writes its status and events to.
//
// Out of process (`detached`, for the agent and `make train detach=1`): each attempt's runner is
// a program of its own in its own session, which outlives the process that started it. Its
// pid is the handle's, and `runner.pid` in the attempt folder is the marker a submit looks for
// first, so the same attempt submitted again (after a crash between the start and the record)
// finds the runner instead of starting a second one.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isAlive, processStartTime } from '../process-alive.js';
import type { Store } from '../store/store.js';
import { runKeys } from '../store/run-keys.js';
import { EVENTS_FILE, STOP_REQUEST, TERMINAL, type AttemptSpec, type AttemptStatus, type RunnerEvent } from '../runner/attempt-spec.js';
import { AttemptRunner, workPaths } from '../runner/attempt-runner.js';
import { lastJsonLine, parseEventLines } from '../runner/jsonl.js';
import { settleAttempt } from '../runner/work-tidy.js';
import { CUT_SHORT, sleepUnless } from '../sleep-unless.js';
import type { Backend, BackendLogsOptions, Capabilities, Handle, PollRequest, PollResult, Submission } from './backend.js';
import { storedLogText, utf8Text } from './log-text.js';

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
  /** the pid is the attempt's own runner, a process of its own (absent: the orchestrator's) */
  detached: z.boolean().optional(),
});
type LocalHandle = z.infer<typeof LocalHandle>;

export interface LocalBackendOptions {
  root: string;
  store: Store;
  workDir: (unit: string) => string;
  echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
  /** run each attempt's runner as a process of its own (this file, bundled): it outlives this process */
  detached?: { runnerBundle: string };
}

const RUNNER_PID = 'runner.pid';
const RUNNER_SPEC = 'attempt.json';

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

function inProcessHandle(spec: AttemptSpec, workDir: string): LocalHandle {
  return { backend: 'local', pid: process.pid, pid_start: processStartTime(process.pid), run_id: spec.run_id, unit: spec.unit_id, work_dir: workDir, attempt: spec.attempt };
}

function detachedHandle(spec: AttemptSpec, workDir: string, pid: number, start: string | null): LocalHandle {
  return { backend: 'local', pid, pid_start: start, run_id: spec.run_id, unit: spec.unit_id, work_dir: workDir, attempt: spec.attempt, detached: true };
}

export class LocalBackend implements Backend {
  readonly name = 'local' as const;
  readonly title = 'local';
  readonly kind = 'placer' as const;
  readonly capabilities: Capabilities = { gpus: localGpus(), spot: false, shards: false };
  readonly attemptsInProcess: boolean;
  readonly workersReachStore = true;
  private readonly runners = new Map<string, Entry>();
  /** resolvers of waitForChange calls, fired when an in-process attempt settles */
  private waiters: (() => void)[] = [];
  /** an attempt settled since the last poll: the next wait returns at once (a settle between two waits is not missed) */
  private settledUnpolled = false;

  constructor(private readonly opts: LocalBackendOptions) {
    this.attemptsInProcess = !opts.detached;
  }

  private key(h: { run_id: string; unit?: string; attempt: number | 'predict' }) {
    return `${h.unit ?? h.run_id}/${h.attempt}`;
  }

  slots() {
    return [{ name: LOCAL_SLOT, capacity: 1 }];
  }

  /**
   * An in-process attempt is lost only when its orchestrator is gone, which the poll itself
   * reports: a poll that is merely slow (a loaded machine, a busy event loop) is never silence.
   * A runner of its own is asked through its files, which answer unless the disk does not.
   */
  lostAfterMs(): number {
    return this.opts.detached ? 30_000 : Number.POSITIVE_INFINITY;
  }

  slotOf(): string {
    return LOCAL_SLOT;
  }

  async prepare(slots: readonly string[]): Promise<Map<string, Error | null>> {
    return new Map(slots.map((s) => [s, null]));
  }

  async submitMany(subs: readonly Submission[]): Promise<Handle[]> {
    if (this.opts.detached) return Promise.all(subs.map(({ spec }) => this.startDetached(spec, this.opts.detached!.runnerBundle)));
    return subs.map(({ spec }) => this.start(spec));
  }

  /**
   * The attempt's runner as a process of its own, unless one was started already: its marker
   * names a live runner, it has ended (a final status here or in the store), or a runner of
   * this attempt's spec is running without a marker (started just before a crash).
   */
  private async startDetached(spec: AttemptSpec, bundle: string): Promise<LocalHandle> {
    if (spec.attempt === 'predict') return this.start(spec);
    const found = await this.startedDetached(spec);
    if (found) return found;
    const workDir = this.opts.workDir(spec.unit_id);
    const dir = workPaths(workDir, spec.attempt).attempt;
    const specFile = path.join(dir, RUNNER_SPEC);
    const handle = (pid: number, start: string | null) => detachedHandle(spec, workDir, pid, start);
    mkdirSync(dir, { recursive: true });
    writeFileSync(specFile, JSON.stringify(spec, null, 2) + '\n');
    const log = openSync(path.join(dir, 'runner.log'), 'a');
    try {
      const child = spawn(process.execPath, [bundle, '--spec', specFile, '--root', this.opts.root, '--work', workDir], { cwd: this.opts.root, detached: true, stdio: ['ignore', 'ignore', log] });
      child.unref();
      if (!child.pid) throw new Error(`could not start the runner (${bundle})`);
      const start = processStartTime(child.pid);
      writeFileSync(path.join(dir, RUNNER_PID), `${child.pid} ${start ?? ''}\n`);
      return handle(child.pid, start);
    } finally {
      closeSync(log);
    }
  }

  /**
   * An attempt started already: an in-process one while this process runs it (its start does not
   * outlive the process), one of its own as startDetached finds it.
   */
  async findSubmitted(subs: readonly Submission[]): Promise<(Handle | null)[]> {
    return Promise.all(
      subs.map(async ({ spec }) => {
        if (this.opts.detached && spec.attempt !== 'predict') return this.startedDetached(spec);
        const handle = inProcessHandle(spec, this.opts.workDir(spec.unit_id));
        return this.runners.has(this.key(handle)) ? handle : null;
      }),
    );
  }

  private async startedDetached(spec: AttemptSpec): Promise<LocalHandle | null> {
    const workDir = this.opts.workDir(spec.unit_id);
    const dir = workPaths(workDir, spec.attempt).attempt;
    const found = await this.findDetached(spec.unit_id, dir, path.join(dir, RUNNER_SPEC));
    return found && detachedHandle(spec, workDir, found.pid, found.start);
  }

  /** A runner this attempt already has: by its marker, by its final status, or by its spec file on a command line. */
  private async findDetached(unit: string, dir: string, specFile: string): Promise<{ pid: number; start: string | null } | null> {
    const [pidText, start] = readText(path.join(dir, RUNNER_PID)).trim().split(' ');
    const pid = Number(pidText);
    if (pid > 0 && (isAlive(pid, start || null) || existsSync(path.join(dir, 'status.json')))) return { pid, start: start || null };
    const attempt = Number(path.basename(dir));
    if (await this.opts.store.stat(runKeys.attemptFile(unit, attempt, 'status.json'))) return { pid: pid > 0 ? pid : 0, start: start || null };
    const running = runnersOf(specFile);
    return running ? { pid: running, start: processStartTime(running) } : null;
  }

  private start(spec: AttemptSpec): LocalHandle {
    const workDir = this.opts.workDir(spec.unit_id);
    const handle = inProcessHandle(spec, workDir);
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
    const stop = () => timer.abort(CUT_SHORT);
    signal?.addEventListener('abort', stop, { once: true });
    let wake = () => {};
    const changed = new Promise<void>((r) => this.waiters.push((wake = r)));
    await Promise.race([sleepUnless(ms, timer.signal), changed]);
    timer.abort(CUT_SHORT);
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
    // Asked before the status is read: a runner that writes its final status and exits between
    // the two is then seen running (its end comes with the next poll), never gone without one.
    const alive = !mine && h.pid > 0 && isAlive(h.pid, h.pid_start);
    // A finished attempt's folder may be tidied away (pull): its status is in the store then.
    // So are its events, which an orchestrator that died after the tidy and before recording the end has not all read.
    const stored = (name: string, none: string) => () => this.opts.store.getBytes(runKeys.attemptFile(h.unit ?? h.run_id, h.attempt, name)).then((b) => b?.toString('utf8') ?? none);
    const status: AttemptStatus | null = mine
      ? mine.runner.status
      : (JSON.parse(await readFile(path.join(dir, 'status.json'), 'utf8').catch(stored('status.json', 'null'))) as AttemptStatus | null);
    const events = parseEventLines<RunnerEvent>(await readFile(path.join(dir, EVENTS_FILE), 'utf8').catch(mine ? () => '' : stored(EVENTS_FILE, ''))).slice(eventsFrom);
    const base = { exit_code: status?.exit_code ?? null, events, metrics: lastJsonLine(path.join(dir, 'metrics.jsonl')), last_line: null, unanswered: false };
    // An in-process runner's state turns final before its outputs are stored: wait for both.
    // A runner of its own is done once it has exited (it copies its files to the store after its status).
    const settled = mine ? mine.settled : !(h.detached && alive);
    if (status && settled && TERMINAL.has(status.state)) return { ...base, state: status.state, reason: status.reason };
    if (mine || alive) return { ...base, state: 'running', reason: null };
    return { ...base, state: 'lost', reason: `the runner (pid ${h.pid}) is gone without a final status` };
  }

  async cancel(handle: Handle, opts: { force?: boolean; preempt?: boolean } = {}): Promise<void> {
    const h = LocalHandle.parse(handle);
    const own = this.runners.get(this.key(h))?.runner;
    if (own) return opts.force ? own.kill() : own.requestStop(opts.preempt ? 'preempt' : 'cancel');
    const dir = workPaths(h.work_dir, h.attempt).attempt;
    // A preemption is the machine going away, not a user's stop: no request, the signal alone.
    if (!opts.preempt) writeFileSync(path.join(dir, STOP_REQUEST), `${new Date().toISOString()}\n`);
    // A request's signal only hurries it along, and only once the runner has written its first
    // status: before it, node may still be loading the runner, and a signal then ends it without
    // one. The runner reads the request before it starts the experiment, and on every tick.
    const signalNow = opts.preempt || existsSync(path.join(dir, 'status.json'));
    if (signalNow && isAlive(h.pid, h.pid_start)) process.kill(h.pid, 'SIGTERM');
  }

  async readAttemptFile(handle: Handle, name: 'metrics.jsonl'): Promise<Buffer | null> {
    const h = LocalHandle.parse(handle);
    return readFile(path.join(workPaths(h.work_dir, h.attempt).attempt, name)).catch(() => null);
  }

  /** Following reads what was added every 0.3 s until the attempt ends, or its signal aborts. */
  async *logs(handle: Handle, opts: BackendLogsOptions): AsyncIterable<string> {
    const h = LocalHandle.parse(handle);
    const name = `${opts.stream ?? 'stdout'}.log`;
    const file = path.join(workPaths(h.work_dir, h.attempt).attempt, name);
    if (!existsSync(file)) {
      yield* storedLogText(this.opts.store, runKeys.attemptFile(h.unit ?? h.run_id, h.attempt, name));
      return;
    }
    yield* utf8Text(this.logChunks(h, file, opts));
  }

  /** The log file's bytes, 64 KiB at a time as the reader takes them, then what the attempt adds while followed. */
  private async *logChunks(h: LocalHandle, file: string, opts: BackendLogsOptions): AsyncGenerator<Buffer> {
    const fd = await open(file, 'r');
    try {
      let offset = 0;
      let last = !opts.follow; // read to the end of the file and stop
      const buf = Buffer.alloc(1 << 16); // each chunk is decoded before the next read refills it
      for (;;) {
        if (opts.signal?.aborted) return;
        const { bytesRead } = await fd.read(buf, 0, buf.length, offset);
        if (bytesRead > 0) {
          offset += bytesRead;
          yield buf.subarray(0, bytesRead);
        } else if (last) {
          return;
        } else if (TERMINAL.has((await this.poll(h)).state)) {
          last = true; // what the attempt wrote before it ended is still to read
        } else {
          await sleepUnless(300, opts.signal);
        }
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

/** The pid of a live runner started with this spec file (its command line names it), or null. */
function runnersOf(specFile: string): number | null {
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv.includes('--spec') && argv[argv.indexOf('--spec') + 1] === specFile && isAlive(Number(p), null)) return Number(p);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return null;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
