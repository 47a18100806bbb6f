// The parts of a Batch v1 Job the stand-in reads, and the rules a well-typed Job must still meet:
// the API's own (one task group, at least one runnable, maxRetryCount 0..10, one lifecycle
// policy) and the stand-in's limits (no barriers, background runnables, runnable timeouts or KMS
// variables; containers only when they may run as local commands), each an INVALID_ARGUMENT.
import { InvalidArgument } from './proto-check.js';

export interface Environment {
  variables?: Record<string, string>;
  secretVariables?: Record<string, string>;
  encryptedVariables?: unknown;
}
export interface Runnable {
  script?: { text?: string; path?: string };
  container?: { commands?: string[]; entrypoint?: string };
  barrier?: unknown;
  background?: boolean;
  timeout?: string;
  ignoreExitStatus?: boolean;
  alwaysRun?: boolean;
  environment?: Environment;
}
export interface LifecyclePolicy {
  action?: 'ACTION_UNSPECIFIED' | 'RETRY_TASK' | 'FAIL_TASK';
  actionCondition?: { exitCodes?: number[] };
}
export interface TaskSpec {
  runnables?: Runnable[];
  maxRunDuration?: string;
  maxRetryCount?: number;
  lifecyclePolicies?: LifecyclePolicy[];
  environment?: Environment;
  environments?: Record<string, string>;
}
export interface TaskGroup {
  taskSpec?: TaskSpec;
  /** int64: a string in canonical REST JSON; absent or 0 means 1 */
  taskCount?: string;
  /** absent or 0: all tasks at once */
  parallelism?: string;
  taskEnvironments?: Environment[];
}
/** A Job in canonical REST JSON (after checkMessage). */
export interface JobSpec {
  taskGroups?: TaskGroup[];
}

const fail = (at: string, problem: string) => new InvalidArgument(`Invalid value at '${at}': ${problem}`);

export function checkJobRules(job: JobSpec, runContainersLocally: boolean): void {
  const groups = job.taskGroups ?? [];
  if (groups.length !== 1) throw fail('job.taskGroups', `exactly one task group is supported, got ${groups.length}`);
  const group = groups[0]!;
  const at = 'job.taskGroups[0]';
  if (Number(group.taskCount ?? 0) < 0) throw fail(`${at}.taskCount`, 'must not be negative');
  if (Number(group.parallelism ?? 0) < 0) throw fail(`${at}.parallelism`, 'must not be negative');
  const spec = group.taskSpec;
  if (!spec?.runnables?.length) throw fail(`${at}.taskSpec.runnables`, 'at least one runnable is required');
  const retries = spec.maxRetryCount ?? 0;
  if (retries < 0 || retries > 10) throw fail(`${at}.taskSpec.maxRetryCount`, `must be in [0, 10], got ${retries}`);
  if ((spec.lifecyclePolicies?.length ?? 0) > 1) throw fail(`${at}.taskSpec.lifecyclePolicies`, 'only one lifecycle policy is supported');
  const envs = [spec.environment, ...(group.taskEnvironments ?? []), ...spec.runnables.map((r) => r.environment)];
  if (envs.some((e) => e?.encryptedVariables)) throw fail(at, 'encryptedVariables (KMS) are not supported by the stand-in');
  spec.runnables.forEach((r, i) => checkRunnable(r, `${at}.taskSpec.runnables[${i}]`, runContainersLocally));
}

function checkRunnable(r: Runnable, at: string, runContainersLocally: boolean): void {
  for (const field of ['barrier', 'background', 'timeout'] as const) {
    if (r[field]) throw fail(`${at}.${field}`, 'not supported by the stand-in');
  }
  if (r.container) {
    if (!runContainersLocally) throw fail(`${at}.container`, 'container runnables run only with the stand-in option runContainersLocally');
    if (!r.container.entrypoint && !r.container.commands?.length) throw fail(`${at}.container`, 'the stand-in needs entrypoint or commands to run');
  } else if (!r.script?.text && !r.script?.path) {
    throw fail(at, 'one of script (text or path) or container is required');
  }
}

/** What a runnable runs, as argv on this machine. */
export function runnableArgv(r: Runnable): string[] {
  if (r.container) return [...(r.container.entrypoint ? [r.container.entrypoint] : []), ...(r.container.commands ?? [])];
  return r.script?.text !== undefined ? ['bash', '-c', r.script.text] : ['bash', r.script!.path!];
}

/**
 * Whether an attempt that ended with `exitCode` runs again, as TaskSpec documents it: only while
 * retries are left; then by the lifecycle policy (RETRY_TASK retries on a listed code and fails
 * on any other, FAIL_TASK the other way round); without one, any failure is retried.
 */
export function retries(spec: TaskSpec, retriesDone: number, exitCode: number): boolean {
  if (retriesDone >= (spec.maxRetryCount ?? 0)) return false;
  const policy = spec.lifecyclePolicies?.[0];
  const listed = policy?.actionCondition?.exitCodes?.includes(exitCode) ?? false;
  if (policy?.action === 'RETRY_TASK') return listed;
  if (policy?.action === 'FAIL_TASK') return !listed;
  return true;
}

/** `3600s`, `1.5s` → milliseconds. */
export function durationMs(d: string): number {
  return Number(d.slice(0, -1)) * 1000;
}
