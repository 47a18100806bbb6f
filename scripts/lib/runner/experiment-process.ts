// Starts the experiment in its own process group and makes sure it never outlives us.
// A detached reaper shell holds a pipe from this process: when we exit normally we tell it
// "done"; when we die (even by SIGKILL) the pipe closes and it kills the experiment's group.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { CommandSpec } from '../spec/experiment.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ExperimentProcess {
  pid: number;
  exited: Promise<ExitInfo>;
  /** Signals the whole process group; ignores a group that is already gone. */
  signal(sig: NodeJS.Signals): void;
}

export function commandArgv(command: CommandSpec): string[] {
  return typeof command === 'string' ? ['/bin/sh', '-c', command] : [...command];
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  if (pgid <= 0) return;
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group has already exited
  }
}

function startReaper(pgid: number): Writable | null {
  const reaper = spawn(
    '/bin/sh',
    // `env kill`: dash's builtin kill cannot signal a process group (a negative pid).
    ['-c', 'read -r msg; [ "$msg" = done ] || env kill -s KILL -- "-$1" 2>/dev/null', 'switchyard-reaper', String(pgid)],
    { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  reaper.unref();
  const stdin = reaper.stdin;
  stdin?.on('error', () => {}); // the reaper may be gone already; nothing to clean up then
  (stdin as unknown as { unref?: () => void })?.unref?.();
  return stdin;
}

export function startExperiment(
  command: CommandSpec,
  opts: { cwd: string; env: NodeJS.ProcessEnv; onStdout: (b: Buffer) => void; onStderr: (b: Buffer) => void },
): ExperimentProcess {
  const [file, ...args] = commandArgv(command);
  const child: ChildProcess = spawn(file!, args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<ExitInfo>((resolve) => {
    child.on('error', (err) => {
      opts.onStderr(Buffer.from(`switchyard: cannot start ${file}: ${err.message}\n`));
      resolve({ code: 127, signal: null });
    });
    // On exit, stragglers left in the group (background jobs of a shell command) are killed,
    // so the output pipes close and 'close' fires once all output has been read.
    child.on('exit', (code, signal) => {
      if (child.pid) killGroup(child.pid, 'SIGKILL');
      child.on('close', () => resolve({ code, signal }));
    });
  });
  const pid = child.pid ?? -1;
  const reaper = pid > 0 ? startReaper(pid) : null;
  child.stdout!.on('data', opts.onStdout);
  child.stderr!.on('data', opts.onStderr);
  void exited.then(() => reaper?.end('done\n'));
  return {
    pid,
    exited,
    signal: (sig) => killGroup(pid, sig),
  };
}
