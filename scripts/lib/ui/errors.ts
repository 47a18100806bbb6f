// Two kinds of failure, one handler. A UserError is expected and actionable: one line, no
// stack, exit 1. A CommandError carries the argv, exit code and stderr tail of a tool we ran.
// Anything else is a bug in Switchyard and prints its stack.

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

function describe(err: unknown): { line: string; stack?: string; code: number } {
  if (err instanceof UserError) return { line: err.message, code: err.exitCode };
  if (err instanceof CommandError) return { line: err.message, code: 1 };
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' && e.path) return { line: `no such file or directory: ${e.path}`, code: 1 };
  if (e?.code === 'EACCES' && e.path) return { line: `permission denied: ${e.path}`, code: 1 };
  return { line: `internal error: ${e?.message ?? String(err)}`, stack: e?.stack, code: 70 };
}

const cleanups: (() => Promise<void>)[] = [];

/** Work to do when the verb ends either way (closing pooled connections so the process can exit). */
export function atExit(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** Entry-point wrapper for every verb script: runs main, turns failures into one clear line. */
export async function runMain(main: () => Promise<number | void>): Promise<void> {
  try {
    const code = await main();
    process.exitCode = code ?? 0;
  } catch (err) {
    const { line, stack, code } = describe(err);
    process.stderr.write(`switchyard: ${line}\n`);
    if (stack && process.env.SWITCHYARD_DEBUG !== '0') process.stderr.write(`${stack}\n`);
    process.exitCode = code;
  } finally {
    await Promise.allSettled(cleanups.map((fn) => fn()));
  }
}
