// Running other programs: always an argv array, never a shell string built from input.
import { execFile, type ExecFileOptions } from 'node:child_process';
import { CommandError } from './ui/errors.js';

export interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

/** Runs argv to completion; throws CommandError on a non-zero exit unless `allowFail`. */
export function run(
  argv: readonly string[],
  opts: ExecFileOptions & { allowFail?: boolean; input?: string | Buffer } = {},
): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  const { allowFail, input, ...execOpts } = opts;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { maxBuffer: 1 << 30, ...execOpts, encoding: 'buffer' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        const errText = stderr.toString();
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
        if (code !== 0 && !allowFail) return reject(new CommandError(argv, code, errText));
        resolve({ stdout, stderr: errText, code });
      },
    );
    // A program may exit without reading its input (a script's early exit): that is its exit, not an EPIPE here.
    if (input !== undefined) child.stdin?.on('error', () => {}).end(input);
  });
}

/** Runs argv and returns trimmed stdout text. */
export async function capture(argv: readonly string[], opts: ExecFileOptions = {}): Promise<string> {
  return (await run(argv, opts)).stdout.toString().trim();
}
