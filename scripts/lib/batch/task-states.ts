// What Batch says of each task of a job, as the state of the unit it runs (task i runs unit i of
// the submission). Pure: the job and its tasks as the client returns them (enums as numbers or
// names, int64 as strings or numbers). This is Batch's side only: where the runner's status.json
// reached the store, it tells how an attempt ended more exactly (a timeout the runner kept, a
// cancel); Batch's side covers what the runner cannot report: waiting, a VM lost, preempted.
import type { protos } from '@google-cloud/batch';
import type { AttemptState } from '../runner/attempt-spec.js';
import { MAX_RUN_DURATION, PREEMPTED, VM_FAILURES } from './exit-codes.js';

type Job = protos.google.cloud.batch.v1.IJob;
type Task = protos.google.cloud.batch.v1.ITask;
type StatusEvent = protos.google.cloud.batch.v1.IStatusEvent;

export interface TaskState {
  state: AttemptState;
  /** why it waits or how it ended, for people */
  reason: string | null;
  exit_code: number | null;
}

/** JobStatus.State and TaskStatus.State, by number (test/unit/batch-states.test.ts holds them to protos.json). */
export const JOB_STATES = ['STATE_UNSPECIFIED', 'QUEUED', 'SCHEDULED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'DELETION_IN_PROGRESS', 'CANCELLATION_IN_PROGRESS', 'CANCELLED'] as const;
export const TASK_STATES = ['STATE_UNSPECIFIED', 'PENDING', 'ASSIGNED', 'RUNNING', 'FAILED', 'SUCCEEDED', 'UNEXECUTED'] as const;
type JobState = (typeof JOB_STATES)[number];

function stateName<T extends readonly string[]>(names: T, value: unknown): T[number] {
  if (typeof value === 'number') return names[value] ?? names[0]!;
  return typeof value === 'string' && names.includes(value) ? value : names[0]!;
}

/** int64 fields arrive as strings, numbers or Longs; all print as their decimal value. */
const int = (v: unknown): number | null => (v === null || v === undefined ? null : Number(String(v)));

const pending = (reason: string): TaskState => ({ state: 'pending', reason, exit_code: null });

const indexOf = (t: Task) => int(t.name?.split('/').at(-1));

/**
 * Whether the tasks alone tell the states of those at `indices`: each is listed and running or
 * ended. Otherwise (one not listed, or waiting) the job's state and events say why it waits.
 */
export function tasksTell(tasks: readonly Task[], indices: Iterable<number>): boolean {
  const byIndex = new Map(tasks.map((t) => [indexOf(t), t]));
  const told = new Set<string>(['RUNNING', 'ASSIGNED', 'SUCCEEDED', 'FAILED']);
  for (const i of indices) if (!told.has(stateName(TASK_STATES, byIndex.get(i)?.status?.state))) return false;
  return true;
}

/**
 * One state per task of the job's task group, in task index order. `job` null: not read, as
 * tasksTell allows; the listing then stands for the whole group.
 */
export function taskStates(job: Job | null, tasks: readonly Task[]): TaskState[] {
  const byIndex = new Map(tasks.map((t) => [indexOf(t), t]));
  const count = job ? (int(job.taskGroups?.[0]?.taskCount) ?? 0) : Math.max(-1, ...[...byIndex.keys()].filter((i) => i !== null)) + 1;
  const jobState = stateName(JOB_STATES, job?.status?.state);
  return Array.from({ length: count }, (_, i) => taskState(byIndex.get(i), jobState, job ?? {}));
}

function taskState(task: Task | undefined, jobState: JobState, job: Job): TaskState {
  const cancelled = jobState === 'CANCELLED';
  if (!task) {
    if (cancelled) return { state: 'cancelled', reason: 'the job was cancelled before this task started', exit_code: null };
    if (jobState === 'SUCCEEDED' || jobState === 'FAILED') return { state: 'lost', reason: withLatestEvent(`the job ended ${jobState} without this task`, job), exit_code: null };
    return pending(waiting(jobState, job));
  }
  const exit = lastExitCode(task.status?.statusEvents ?? []);
  switch (stateName(TASK_STATES, task.status?.state)) {
    case 'RUNNING':
      return { state: 'running', reason: null, exit_code: null };
    case 'ASSIGNED':
      return pending('its VM is starting it');
    case 'SUCCEEDED':
      return { state: 'succeeded', reason: null, exit_code: 0 };
    case 'FAILED':
      return ended(exit);
    case 'UNEXECUTED':
      if (cancelled || jobState === 'CANCELLATION_IN_PROGRESS') return { state: 'cancelled', reason: 'the job was cancelled before this task started', exit_code: null };
      // The job's latest event says why (a quota, a machine type the region lacks): a new attempt meets it again.
      return { state: 'lost', reason: withLatestEvent(`it never ran: the job ended ${jobState}`, job), exit_code: null };
    default:
      if (cancelled) return { state: 'cancelled', reason: 'the job was cancelled before this task started', exit_code: null };
      // Pending again after a VM failure: Batch retries it.
      if (exit !== null && VM_FAILURES.has(exit)) return pending(`${VM_FAILURES.get(exit)} (Batch exit ${exit}); Batch runs it again`);
      return pending(waiting(jobState, job));
  }
}

/** How a task that Batch gave up on ended, by its last exit code. */
function ended(exit: number | null): TaskState {
  if (exit === null) return { state: 'lost', reason: 'Batch reports it failed, without an exit code', exit_code: null };
  const vm = VM_FAILURES.get(exit);
  if (vm) return { state: exit === PREEMPTED ? 'preempted' : 'lost', reason: `${vm} (Batch exit ${exit}), retries used up`, exit_code: exit };
  if (exit === MAX_RUN_DURATION) return { state: 'timeout', reason: `it ran past max_run_duration (Batch exit ${exit})`, exit_code: exit };
  return { state: 'failed', reason: `exit ${exit}`, exit_code: exit };
}

/** Why a task not yet started waits: the job's state and its latest event. */
function waiting(jobState: JobState, job: Job): string {
  const why: Partial<Record<JobState, string>> = {
    STATE_UNSPECIFIED: 'submitted to Batch',
    QUEUED: 'queued in Batch',
    SCHEDULED: 'Batch is creating its VMs',
    RUNNING: 'waiting for a VM',
    CANCELLATION_IN_PROGRESS: 'the job is being cancelled',
    DELETION_IN_PROGRESS: 'the job is being deleted',
  };
  return withLatestEvent(why[jobState] ?? `job ${jobState.toLowerCase()}`, job);
}

/** `text`, then the first line of the job's latest status event, where it has one. */
function withLatestEvent(text: string, job: Job): string {
  const latest = inOrder(job.status?.statusEvents ?? []).at(-1)?.description?.split('\n')[0]?.slice(0, 160);
  return latest ? `${text}: ${latest}` : text;
}

/** Status events oldest first (by eventTime where they have one). */
function inOrder(events: readonly StatusEvent[]): StatusEvent[] {
  const at = (e: StatusEvent) => (int(e.eventTime?.seconds) ?? 0) * 1e9 + (e.eventTime?.nanos ?? 0);
  return [...events].sort((a, b) => at(a) - at(b));
}

/** The exit code of the task's latest run; proto3 JSON leaves out an exit code of 0. */
function lastExitCode(events: readonly StatusEvent[]): number | null {
  const run = inOrder(events).filter((e) => e.taskExecution).at(-1);
  return run ? (run.taskExecution!.exitCode ?? 0) : null;
}
