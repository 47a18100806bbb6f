// Two kinds of failure, one handler. A UserError is expected and actionable: one line, no
// stack, exit 1. A CommandError carries the argv, exit code and stderr tail of a tool we ran.
// Anything else is a bug in Switchyard and prints its stack. A full or read-only disk is
// expected too: one line naming the folder and its free space.
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { formatBytes } from './format.js';

export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    const tail = stderr.trimEnd().split('\n').slice(-20).join('\n');
    super(`${argv.join(' ')} exited ${code ?? 'by signal'}${tail ? `:\n${tail}` : ''}`);
    this.name = 'CommandError';
  }
}

/** `file: field: problem, fix` — the one-line shape of every validation error. */
export function fieldError(file: string, field: string, message: string): UserError {
  return new UserError(`${file}: ${field ? `${field}: ` : ''}${message}`);
}

const DISK_PROBLEMS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  SQLITE_FULL: 'no space left on device',
};

/** Free bytes on the filesystem of `dir` (or of its nearest existing parent). */
function freeBytes(dir: string): number | null {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      const s = statfsSync(d);
      return s.bavail * s.bsize;
    } catch {
      if (d === path.dirname(d)) return null;
    }
  }
}

/** A write that failed because its disk is full or read-only: one line, says where and how much is free. */
export class DiskError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'DiskError';
  }
}

/** What is wrong with the disk, for an errno (or SQLite) error that says it is full or read-only. */
function diskProblem(err: unknown): string | null {
  const code = (err as NodeJS.ErrnoException)?.code;
  return !(err instanceof UserError) && code && Object.hasOwn(DISK_PROBLEMS, code) ? DISK_PROBLEMS[code]! : null;
}

/** Whether `err` is a full or read-only disk, already described or not. */
export function isDiskProblem(err: unknown): boolean {
  return err instanceof DiskError || diskProblem(err) !== null;
}

/**
 * A write under `dir` that failed because the disk is full or read-only, as one line naming
 * `what` (`store .switchyard/store`) and the free space there; null for any other error.
 */
export function diskError(what: string, dir: string | null, err: unknown): DiskError | null {
  const problem = diskProblem(err);
  if (!problem) return null;
  const free = dir === null ? null : freeBytes(dir);
  const fix = problem === 'read-only file system' ? 'make it writable' : 'free space';
  return new DiskError(
    `${what}: ${problem}${free === null ? '' : ` (${formatBytes(free)} free)`}; ${fix}, then run the same command again (a run resumes from its last committed checkpoint)`,
  );
}

/** Errnos of a network that did not carry a call (a server down, a connection cut): not a bug here. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const AGAIN = 'run the same command again once it answers (a run resumes from its last committed checkpoint)';

/** A service's refusal as the AWS SDK throws it (the S3 store): its HTTP status and error name. */
interface ServiceFailure {
  name: string;
  message: string;
  $fault: 'client' | 'server';
  $metadata: { httpStatusCode?: number };
}

const isServiceFailure = (err: unknown): err is ServiceFailure => typeof err === 'object' && err !== null && '$fault' in err && '$metadata' in err;

/** What the verb's failure says: its one line, the stack only for a bug in Switchyard, and the exit code. */
export function describeError(err: unknown): { line: string; stack?: string; code: number } {
  if (err instanceof UserError) return { line: err.message, code: err.exitCode };
  if (err instanceof CommandError) return { line: err.message, code: 1 };
  // Failures of what is called, not of Switchyard: one line each, no stack.
  if (isServiceFailure(err)) return { line: `the S3 store answered ${err.$metadata.httpStatusCode ?? 'without a status'} ${err.name}: ${err.message.split('\n')[0]}; ${AGAIN}`, code: 1 };
  const e = err as NodeJS.ErrnoException;
  if (e?.code && NETWORK_CODES.has(e.code) && !e.path) return { line: `network: ${e.message.split('\n')[0]}; ${AGAIN}`, code: 1 };
  if (e?.code === 'ENOENT' && e.path) return { line: `no such file or directory: ${e.path}`, code: 1 };
  if (e?.code === 'EACCES' && e.path) return { line: `permission denied: ${e.path}`, code: 1 };
  const dir = e?.path ? path.dirname(e.path) : null;
  const disk = diskError(dir === null ? 'disk' : path.relative(process.cwd(), dir) || '.', dir, err);
  if (disk) return { line: disk.message, code: disk.exitCode };
  return { line: `internal error: ${e?.message ?? String(err)}`, stack: e?.stack, code: 70 };
}

const cleanups: (() => Promise<void>)[] = [];
const failureHooks = new Set<(err: unknown) => Promise<void>>();

/** Work to do when the verb ends either way (closing pooled connections so the process can exit). */
export function atExit(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/**
 * Work to do when the verb fails, before it exits: stopping the experiment it follows, so none
 * runs on unfollowed and unrecorded. Returns the call that drops it once it is not needed.
 */
export function onFailure(fn: (err: unknown) => Promise<void>): () => void {
  failureHooks.add(fn);
  return () => failureHooks.delete(fn);
}

const faultsFired = new Set<string>();

/**
 * A fault-injection point for the tests: with SWITCHYARD_TEST_FAULT=<name> in the environment
 * the point of that name throws once, as a bug in Switchyard would (the clean-up after it then
 * runs through the same code). Nothing else sets the variable.
 */
export function faultPoint(name: string): void {
  if (process.env.SWITCHYARD_TEST_FAULT !== name || faultsFired.has(name)) return;
  faultsFired.add(name);
  throw new Error(`injected fault at ${name} (SWITCHYARD_TEST_FAULT)`);
}

function report(err: unknown): number {
  const { line, stack, code } = describeError(err);
  process.stderr.write(`switchyard: ${line}\n`);
  if (stack && process.env.SWITCHYARD_DEBUG !== '0') process.stderr.write(`${stack}\n`);
  return code;
}

/**
 * A reader that goes away (`make train | head -1`) closes our stdout, and every later write
 * fails with EPIPE, which Node raises as an uncaught error. The verb goes on without the
 * stream, as it would with no reader at all: the experiment's output is in its logs anyway.
 */
function outliveClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
}

/** Entry-point wrapper for every verb script: runs main, turns failures into one clear line. */
export async function runMain(main: () => Promise<number | void>): Promise<void> {
  outliveClosedOutput();
  // Once nothing is left to wait for, end at once: node's own teardown (destroying the heap and
  // the native modules' state) took 15-30 ms of each verb's end, the runner's on every host too.
  // 'beforeExit' comes only when the event loop is empty, so no write or request is cut short.
  process.once('beforeExit', () => process.exit());
  // An error thrown outside main's own chain (an event handler, a promise nobody awaits) fails
  // the verb the same way, instead of killing the process under a running experiment.
  let escaped = false;
  let settled = false;
  const uncaught = new Promise<never>((_, reject) => {
    const fail = (err: unknown) => {
      if (escaped || settled) {
        process.exitCode = report(err);
        return;
      }
      escaped = true;
      reject(err);
    };
    process.on('uncaughtException', fail);
    process.on('unhandledRejection', fail);
  });
  try {
    process.exitCode = (await Promise.race([main(), uncaught])) ?? 0;
  } catch (err) {
    process.exitCode = report(err);
    // A clean-up that hits the same full disk has nothing new to say: the one line stands.
    for (const hook of failureHooks) await hook(err).catch((e: unknown) => void (isDiskProblem(e) && isDiskProblem(err) ? 0 : report(e)));
  } finally {
    settled = true;
    await Promise.allSettled(cleanups.map((fn) => fn()));
  }
  // main may still be running after an escaped error: the verb ends here all the same.
  if (escaped) process.exit();
}
