// The laptop: the runner runs inside this process (no second Node start-up on the hot path),
// the experiment in its own process group beside it. Another shell finds the attempt through
// its handle: the orchestrator's pid (with its start time, against pid reuse) and work folder.
import { existsSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, processStartTime } from '../process-alive.js';
import type { Store } from '../store/store.js';
import { ATTEMPT_FILES, EVENTS_FILE, STOP_REQUEST, type AttemptSpec, type AttemptStatus, type RunnerEvent } from '../runner/attempt-spec.js';
import { AttemptFilesMirror } from '../runner/attempt-files.js';
import { AttemptRunner, workPaths } from '../runner/attempt-runner.js';
import { lastJsonLine, parseJsonLines } from '../runner/jsonl.js';
import { runKeys, TERMINAL, type Handle } from '../runs/run-record.js';
import type { Backend, PollResult } from './backend.js';

export interface LocalHandle extends Handle {
  backend: 'local';
  pid: number;
  /** process start time from /proc, so a reused pid is not mistaken for our runner */
  pid_start: string | null;
  run_id: string;
  work_dir: string;
  attempt: number | 'predict';
}

export interface LocalBackendOptions {
  root: string;
  store: Store;
  workDir: (runId: string) => string;
  echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
}

export class LocalBackend implements Backend {
  readonly name = 'local' as const;
  readonly capabilities = { gpus: true, spot: false, shards: true, multiNode: false };
  /** `settled` turns true once the runner has stored its outputs and files, not when its state turns final. */
  private readonly runners = new Map<string, { runner: AttemptRunner; done: Promise<unknown>; settled: boolean }>();

  constructor(private readonly opts: LocalBackendOptions) {}

  private key(runId: string, attempt: number | 'predict') {
    return `${runId}/${attempt}`;
  }

  async submit(spec: AttemptSpec): Promise<LocalHandle> {
    const workDir = this.opts.workDir(spec.run_id);
    const handle: LocalHandle = {
      backend: 'local',
      pid: process.pid,
      pid_start: processStartTime(process.pid),
      run_id: spec.run_id,
      work_dir: workDir,
      attempt: spec.attempt,
    };
    if (this.runners.has(this.key(spec.run_id, spec.attempt))) return handle;
    const runner = new AttemptRunner(spec, {
      root: this.opts.root,
      workDir,
      store: this.opts.store,
      echo: this.opts.echo,
    });
    const entry = { runner, done: Promise.resolve() as Promise<unknown>, settled: false };
    entry.done = runner.run().finally(() => (entry.settled = true));
    this.runners.set(this.key(spec.run_id, spec.attempt), entry);
    return handle;
  }

  async waitForChange(handle: Handle, ms: number): Promise<void> {
    const h = handle as LocalHandle;
    const mine = this.runners.get(this.key(h.run_id, h.attempt));
    if (!mine) return sleep(ms);
    // The timer is cleared when the attempt ends first: a pending one would hold the process open.
    const timer = new AbortController();
    await Promise.race([sleep(ms, undefined, { signal: timer.signal }).catch(() => {}), mine.done]);
    timer.abort();
  }

  /** The in-process runner of an attempt, when this process started it. */
  private runnerOf(handle: Handle): AttemptRunner | undefined {
    const h = handle as LocalHandle;
    return this.runners.get(this.key(h.run_id, h.attempt))?.runner;
  }

  /** This machine is going away (the orchestrator got SIGTERM): checkpoint, end as preempted. */
  preempt(handle: Handle): void {
    this.runnerOf(handle)?.requestStop('preempt');
  }

  async poll(handle: Handle): Promise<PollResult> {
    const h = handle as LocalHandle;
    const paths = workPaths(h.work_dir, h.attempt);
    const mine = this.runners.get(this.key(h.run_id, h.attempt));
    const status: AttemptStatus | null = mine
      ? mine.runner.status
      : (JSON.parse(await readFile(path.join(paths.attempt, 'status.json'), 'utf8').catch(() => 'null')) as AttemptStatus | null);
    const events = parseJsonLines<RunnerEvent>(await readFile(path.join(paths.attempt, EVENTS_FILE), 'utf8').catch(() => ''));
    const metrics = lastJsonLine(path.join(paths.attempt, 'metrics.jsonl'));
    const base = {
      exit_code: status?.exit_code ?? null,
      restored_step: status?.restored_step ?? null,
      last_step: status?.last_step ?? null,
      metrics,
      events,
    };
    // An in-process runner's state turns final before its outputs are stored: wait for both.
    const finished = !mine || mine.settled;
    if (status && finished && TERMINAL.has(status.state)) return { ...base, state: status.state, reason: status.reason };
    if (mine || isAlive(h.pid, h.pid_start)) return { ...base, state: 'running', reason: null };
    return { ...base, state: 'lost', reason: `the runner (pid ${h.pid}) is gone without a final status` };
  }

  async cancel(handle: Handle, opts: { force?: boolean } = {}): Promise<void> {
    const h = handle as LocalHandle;
    const own = this.runnerOf(h);
    if (own) return opts.force ? own.kill() : own.requestStop('cancel');
    const paths = workPaths(h.work_dir, h.attempt);
    writeFileSync(path.join(paths.attempt, STOP_REQUEST), `${new Date().toISOString()}\n`);
    if (isAlive(h.pid, h.pid_start)) process.kill(h.pid, 'SIGTERM');
  }

  async *logs(handle: Handle, opts: { follow: boolean; stream?: 'stdout' | 'stderr' }): AsyncIterable<string> {
    const h = handle as LocalHandle;
    const file = path.join(workPaths(h.work_dir, h.attempt).attempt, `${opts.stream ?? 'stdout'}.log`);
    if (!existsSync(file)) {
      const stored = await this.opts.store.getBytes(runKeys.attemptFile(h.run_id, h.attempt, `${opts.stream ?? 'stdout'}.log`));
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

  /** The runner mirrors its files itself; after a lost attempt, salvage what the worker left. */
  async pull(handle: Handle): Promise<void> {
    const h = handle as LocalHandle;
    const files = await new AttemptFilesMirror(this.opts.store, h.run_id, h.attempt, workPaths(h.work_dir, h.attempt).attempt).load();
    await files.copy(ATTEMPT_FILES, { changedOnly: true });
  }
}
