// The stand-in's execution side. Task group 0 of a job runs here: each task's runnables in order
// as local processes, each in its own process group; at most `parallelism` tasks at once; Batch's
// states (job QUEUED → SCHEDULED → RUNNING → SUCCEEDED/FAILED, task PENDING → ASSIGNED → RUNNING →
// SUCCEEDED/FAILED) with status events carrying each failed attempt's exit code; retries under
// maxRetryCount and the lifecycle policy (a retried task goes back to PENDING, keeping its index);
// maxRunDuration (exit 50005) and preemption (exit 50001); the BATCH_* variables. Each task attempt
// runs on a "VM" of its own: a fresh TMPDIR (`vms/<job id>-<index>-<retry>`), so tasks of two jobs
// never share a scratch folder. Every change is also an entry of `history`, which tests await
// instead of sleeping.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { appendFileSync, closeSync, mkdirSync, openSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { durationMs, retries, runnableArgv, type Environment, type JobSpec, type TaskGroup } from './job-rules.js';

export type TaskState = 'PENDING' | 'ASSIGNED' | 'RUNNING' | 'FAILED' | 'SUCCEEDED';
export type JobState = 'QUEUED' | 'SCHEDULED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'DELETION_IN_PROGRESS';

/** Reserved exit codes: the VM was preempted (Spot); the task ran past maxRunDuration; it failed before it ran. */
export const PREEMPTED = 50001;
export const PAST_MAX_RUN_DURATION = 50005;
const FAILED_BEFORE_RUNNING = 50000;

export interface StatusEvent {
  type: string;
  description: string;
  eventTime: string;
  taskState?: TaskState;
  taskExecution?: { exitCode: number };
}

/** A job or task changing state; a task's FAILED entry carries the exit code, `attempt` counts from 0. */
export interface StandinEvent {
  job: string;
  task?: number;
  state: JobState | TaskState | 'DELETED';
  exitCode?: number;
  attempt?: number;
}

export interface ExecOptions {
  /** working directory of the tasks, and where `<job id>-task<i>.log` (their stdout and stderr) is written */
  dir: string;
  /** Secret Manager version names (`projects/p/secrets/s/versions/1`) → values */
  secrets: Record<string, string>;
  /** the environment every task starts from, before the job's own variables */
  env: Record<string, string>;
  /** tasks go RUNNING and stay so, with no process (benchmarks of thousands of tasks) */
  holdTasks?: boolean;
}

export interface Task {
  index: number;
  state: TaskState;
  events: StatusEvent[];
  /** retries so far: BATCH_TASK_RETRY_ATTEMPT of the current attempt */
  retries: number;
  child?: ChildProcess;
  /** set when the stand-in ends the attempt itself: the exit code it reports */
  killCode?: number;
}

export class Job {
  state: JobState = 'QUEUED';
  readonly events: StatusEvent[] = [];
  readonly tasks: Task[];
  readonly parallelism: number;
  /** the most tasks that were ever RUNNING at once */
  peakRunning = 0;
  readonly createTime = new Date().toISOString();
  updateTime = this.createTime;
  endTime?: string;

  constructor(
    readonly name: string,
    readonly id: string,
    readonly uid: string,
    readonly spec: JobSpec,
  ) {
    const count = Number(this.group.taskCount ?? 0) || 1;
    this.tasks = Array.from({ length: count }, (_, index) => ({ index, state: 'PENDING' as const, events: [], retries: 0 }));
    this.parallelism = Number(this.group.parallelism ?? 0) || count;
  }

  get group(): TaskGroup {
    return this.spec.taskGroups![0]!;
  }
}

const FINAL = new Set<string>(['SUCCEEDED', 'FAILED']);

export class Executor {
  readonly jobs = new Map<string, Job>();
  readonly history: StandinEvent[] = [];
  private readonly changes = new EventEmitter();
  private readonly children = new Set<ChildProcess>();

  constructor(private readonly opts: ExecOptions) {
    this.changes.setMaxListeners(0);
  }

  add(job: Job): void {
    this.jobs.set(job.name, job);
    setImmediate(() => this.pump(job));
  }

  /** The first entry from index `from` on that `pred` accepts, as soon as there is one. */
  waitFor(pred: (e: StandinEvent) => boolean, opts: { from?: number; timeoutMs?: number; what?: string } = {}): Promise<StandinEvent> {
    const seen = this.history.slice(opts.from ?? 0).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.changes.off('event', check);
        reject(new Error(`batch stand-in: timed out after ${opts.timeoutMs ?? 30_000} ms waiting for ${opts.what ?? 'an event'}`));
      }, opts.timeoutMs ?? 30_000);
      const check = (e: StandinEvent) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        this.changes.off('event', check);
        resolve(e);
      };
      this.changes.on('event', check);
    });
  }

  /** Ends a running task's attempt as a Spot preemption would: its processes killed, exit code 50001. */
  async preempt(job: Job, index: number): Promise<StandinEvent> {
    const task = job.tasks[index];
    if (task?.state !== 'RUNNING') throw new Error(`batch stand-in: task ${index} of ${job.name} is not running (${task?.state ?? 'no such task'})`);
    const from = this.history.length;
    this.kill(task, PREEMPTED);
    return this.waitFor((e) => e.job === job.name && e.task === index && e.exitCode === PREEMPTED, { from, what: `task ${index} to end preempted` });
  }

  /** Kills the job's tasks, waits for their processes to end, and forgets the job. */
  async delete(job: Job): Promise<void> {
    this.setJobState(job, 'DELETION_IN_PROGRESS');
    const exits = job.tasks.flatMap((t) => (t.child ? [new Promise((r) => t.child!.once('exit', r))] : []));
    // The code is never reported (a deleted job records nothing more); it stops each attempt.
    for (const t of job.tasks) this.kill(t, PREEMPTED);
    await Promise.all(exits);
    this.jobs.delete(job.name);
    this.record({ job: job.name, state: 'DELETED' });
  }

  /** Kills every task process (SIGKILL to each process group) and waits for them. */
  async close(): Promise<void> {
    const exits = [...this.children].map((c) => new Promise((r) => c.once('exit', r)));
    for (const job of this.jobs.values()) {
      job.state = 'DELETION_IN_PROGRESS';
      for (const t of job.tasks) this.kill(t, PREEMPTED);
    }
    // and the processes of jobs already forgotten, had their deletion failed to end them
    for (const c of this.children) killGroup(c);
    await Promise.all(exits);
  }

  private pump(job: Job): void {
    if (FINAL.has(job.state) || job.state === 'DELETION_IN_PROGRESS') return;
    if (job.state === 'QUEUED') this.setJobState(job, 'SCHEDULED');
    const busy = () => job.tasks.filter((t) => t.state === 'ASSIGNED' || t.state === 'RUNNING').length;
    for (const task of job.tasks) {
      if (busy() >= job.parallelism) break;
      if (task.state === 'PENDING') this.start(job, task);
    }
    job.peakRunning = Math.max(job.peakRunning, busy());
    if (!job.tasks.every((t) => FINAL.has(t.state))) return;
    job.endTime = new Date().toISOString();
    this.setJobState(job, job.tasks.every((t) => t.state === 'SUCCEEDED') ? 'SUCCEEDED' : 'FAILED');
  }

  private start(job: Job, task: Task): void {
    this.setTaskState(job, task, 'ASSIGNED');
    this.setTaskState(job, task, 'RUNNING');
    if (job.state === 'SCHEDULED') this.setJobState(job, 'RUNNING');
    if (this.opts.holdTasks) return;
    void this.runAttempt(job, task).then((code) => this.finish(job, task, code));
  }

  private finish(job: Job, task: Task, exitCode: number): void {
    if (job.state === 'DELETION_IN_PROGRESS') return;
    if (exitCode === 0) {
      this.setTaskState(job, task, 'SUCCEEDED');
    } else {
      this.setTaskState(job, task, 'FAILED', exitCode);
      if (retries(job.group.taskSpec!, task.retries, exitCode)) {
        task.retries++;
        this.setTaskState(job, task, 'PENDING');
      }
    }
    this.pump(job);
  }

  /** One attempt: the runnables in order (after a failure, only alwaysRun ones); its exit code. */
  private async runAttempt(job: Job, task: Task): Promise<number> {
    const spec = job.group.taskSpec!;
    task.killCode = undefined;
    let env: Record<string, string>;
    try {
      env = this.taskEnv(job, task);
    } catch (err) {
      this.log(job, task, `${(err as Error).message}\n`);
      return FAILED_BEFORE_RUNNING;
    }
    const limit = spec.maxRunDuration ? durationMs(spec.maxRunDuration) : undefined;
    const timer = limit === undefined ? undefined : setTimeout(() => this.kill(task, PAST_MAX_RUN_DURATION), limit);
    let code = 0;
    try {
      for (const r of spec.runnables!) {
        if (task.killCode !== undefined) break;
        if (code !== 0 && !r.alwaysRun) continue;
        const exit = await this.runProcess(job, task, runnableArgv(r), { ...env, ...this.resolve(r.environment) });
        if (exit !== 0 && !r.ignoreExitStatus && code === 0) code = exit;
      }
    } catch (err) {
      this.log(job, task, `${(err as Error).message}\n`);
      code ||= FAILED_BEFORE_RUNNING;
    } finally {
      clearTimeout(timer);
    }
    return task.killCode ?? code;
  }

  private runProcess(job: Job, task: Task, argv: string[], env: Record<string, string>): Promise<number> {
    const log = openSync(this.logFile(job, task), 'a');
    const child = spawn(argv[0]!, argv.slice(1), { cwd: this.opts.dir, env, detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    task.child = child;
    this.children.add(child);
    return new Promise((resolve) => {
      const done = (code: number) => {
        this.children.delete(child);
        if (task.child === child) task.child = undefined;
        resolve(code);
      };
      child.once('error', (err) => {
        this.log(job, task, `cannot start ${argv[0]}: ${err.message}\n`);
        done(127);
      });
      child.once('exit', (code, signal) => done(code ?? 128 + (os.constants.signals[signal!] ?? 0)));
    });
  }

  private kill(task: Task, code: number): void {
    if (task.state !== 'RUNNING') return;
    task.killCode ??= code;
    if (task.child) killGroup(task.child);
  }

  private taskEnv(job: Job, task: Task): Record<string, string> {
    const spec = job.group.taskSpec!;
    const vm = path.join(this.opts.dir, 'vms', `${job.id}-${task.index}-${task.retries}`);
    mkdirSync(vm, { recursive: true });
    return {
      ...this.opts.env,
      TMPDIR: vm,
      ...spec.environments,
      ...this.resolve(spec.environment),
      ...this.resolve(job.group.taskEnvironments?.[task.index]),
      BATCH_TASK_INDEX: String(task.index),
      BATCH_TASK_COUNT: String(job.tasks.length),
      BATCH_TASK_RETRY_ATTEMPT: String(task.retries),
      BATCH_JOB_ID: job.id,
    };
  }

  /** Variables plus secret variables, each secret read from the stand-in's Secret Manager map. */
  private resolve(env: Environment | undefined): Record<string, string> {
    const secrets = Object.entries(env?.secretVariables ?? {}).map(([key, name]) => {
      const value = this.opts.secrets[name];
      if (value === undefined) throw new Error(`secret ${name} (for ${key}) not found or not accessible`);
      return [key, value];
    });
    return { ...env?.variables, ...Object.fromEntries(secrets) };
  }

  private setJobState(job: Job, state: JobState): void {
    const now = new Date().toISOString();
    job.events.push({ type: 'STATUS_CHANGED', description: `Job state is set from ${job.state} to ${state} for job ${job.name}.`, eventTime: now });
    job.state = state;
    job.updateTime = now;
    this.record({ job: job.name, state });
  }

  private setTaskState(job: Job, task: Task, state: TaskState, exitCode?: number): void {
    const now = new Date().toISOString();
    const code = exitCode === undefined ? '' : ` with exit code ${exitCode}`;
    task.events.push({
      type: 'STATUS_CHANGED',
      description: `Task state is updated from ${task.state} to ${state}${code}.`,
      eventTime: now,
      taskState: state,
      ...(exitCode === undefined ? {} : { taskExecution: { exitCode } }),
    });
    task.state = state;
    job.updateTime = now;
    this.record({ job: job.name, task: task.index, state, exitCode, attempt: task.retries });
  }

  private record(e: StandinEvent): void {
    this.history.push(e);
    this.changes.emit('event', e);
  }

  logFile(job: Job, task: Task): string {
    return path.join(this.opts.dir, `${job.id}-task${task.index}.log`);
  }

  private log(job: Job, task: Task, line: string): void {
    appendFileSync(this.logFile(job, task), line);
  }
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}
