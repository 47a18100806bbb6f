// Starts the experiment in its own process group and makes sure it never outlives us.
// A reaper shell in a session of its own holds a pipe from this process: when we exit normally
// we tell it "done"; when we die (even by SIGKILL) the pipe closes and it kills the experiment's
// group.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { procStatFields } from '../process-alive.js';
import type { CommandSpec } from '../spec/experiment.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ExperimentProcess {
  pid: number;
  exited: Promise<ExitInfo>;
  /**
   * Signals the whole process group; ignores a group that is already gone. With `graceMs`,
   * the group may outlive the experiment's own exit by that long (a stop in progress).
   */
  signal(sig: NodeJS.Signals, graceMs?: number): void;
}

// bash runs a one-command string by exec'ing it, so the experiment itself is our child: its
// exit code is the one we see, and a SIGTERM reaches it rather than only a waiting shell.
const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';

export function commandArgv(command: CommandSpec): string[] {
  return typeof command === 'string' ? [SHELL, '-c', command] : [...command];
}

/**
 * Whether any process of the group still runs. Zombies do not count: an orphan whose parent
 * died is reaped by init, which in a container may never happen.
 */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (!existsSync('/proc/self/stat')) return true;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const [state, , pgrp] = procStatFields(entry) ?? []; // none: the process ended while we looked
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

/** Resolves once `stream` has closed (all its data delivered). */
function closed(stream: Readable): Promise<unknown> {
  return stream.closed ? Promise.resolve() : once(stream, 'close');
}

// How long the output pipes may stay open once the whole group is gone: enough to read what is
// left in them, then only a process in a session of its own (a daemon) can be holding them.
const PIPE_DRAIN_MS = 5_000;

/**
 * Resolves PIPE_DRAIN_MS after no process of the group is left; its timers hold no process up.
 * The first look waits a beat: the pipes of a group that is gone close meanwhile, and that look
 * (a scan of /proc while a killed member lingers as a zombie: ~2 ms) is never made.
 */
async function groupGoneAWhile(pgid: number): Promise<void> {
  do await sleep(50, undefined, { ref: false });
  while (groupAlive(pgid));
  await sleep(PIPE_DRAIN_MS, undefined, { ref: false });
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  if (pgid <= 0) return;
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group has already exited
  }
}

// Reads one line from its stdin, the pipe from us: anything but "done" (EOF included: we died)
// kills the experiment's group and removes its scratch folder. `env kill`: dash's builtin kill
// cannot signal a process group (a negative pid).
const REAPER = 'read -r msg; [ "$msg" = done ] || { env kill -s KILL -- "-$1" 2>/dev/null; [ -z "$2" ] || rm -rf -- "$2"; }';

// The experiment's first process is this shell. It hands the pipe from us (its fd 3) to the
// reaper, started in a session of its own so that signals to the experiment's group pass it by,
// then execs the command: the experiment keeps the shell's pid, and so its group. The reaper is
// started from a subshell that exits at once, so it is no child of the experiment's (one that
// waits for any child would wait for it), and finds setsid and kill in the system's folders
// whatever PATH the experiment was given. One fork of this process where the reaper had one of
// its own: a fork copies the page tables of the whole node process, ~7-14 ms of blocking for
// the 65 MB of make train.
const LAUNCH = `(PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
 command -v setsid >/dev/null 2>&1 || exit 127
 setsid /bin/sh -c "$1" switchyard-reaper "$$" "$2" <&3 >/dev/null 2>&1 3<&- &) ||
  { echo "switchyard: setsid not found on this machine (it comes with util-linux); install it" >&2; exit 127; }
exec 3<&-
shift 2
command -v "$1" >/dev/null 2>&1 || { echo "switchyard: cannot start $1: not found" >&2; exit 127; }
exec "$@"`;

/** `scratch`: a folder of the experiment's to remove if we die (we remove it ourselves otherwise). */
export function startExperiment(
  command: CommandSpec,
  opts: { cwd: string; env: NodeJS.ProcessEnv; onStdout: (b: Buffer) => void; onStderr: (b: Buffer) => void; scratch?: string },
): ExperimentProcess {
  const argv = commandArgv(command);
  let stopDeadline: number | null = null;
  const child: ChildProcess = spawn('/bin/sh', ['-c', LAUNCH, 'switchyard-experiment', REAPER, opts.scratch ?? '', ...argv], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    // fd 3, not stdin: node destroys a child's stdin the moment the child exits, and the reaper
    // would take that EOF for our death (and remove the scratch folder we still copy from).
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  // Nothing of ours waits on the reaper: not the event loop, and not the end of the experiment,
  // which is its exit and the close of its output (ChildProcess 'close' would wait for fd 3 too).
  const reaper = child.stdio[3] as Socket;
  reaper.on('error', () => {}); // the reaper may be gone already; nothing to clean up then
  reaper.unref();
  const exited = new Promise<ExitInfo>((resolve) => {
    child.on('error', (err) => {
      opts.onStderr(Buffer.from(`switchyard: cannot start ${argv[0]}: ${err.message}\n`));
      resolve({ code: 127, signal: null });
    });
    // When the experiment exits, what is left of its group (background jobs of a shell
    // command) is killed so the output pipes close. While a stop is under way the group gets
    // until the grace deadline first: a shell may die of SIGTERM while its child still saves.
    child.on('exit', async (code, signal) => {
      const pgid = child.pid!;
      while (stopDeadline !== null && Date.now() < stopDeadline && groupAlive(pgid)) await sleep(50);
      killGroup(pgid, 'SIGKILL');
      reaper.end('done\n');
      // A daemon the experiment started (setsid) escapes the group kill and may hold the pipes
      // for ever: the attempt ends without the rest of its output then.
      await Promise.race([Promise.all([closed(child.stdout!), closed(child.stderr!)]), groupGoneAWhile(pgid)]);
      child.stdout!.destroy();
      child.stderr!.destroy();
      resolve({ code, signal });
    });
  });
  const pid = child.pid ?? -1;
  child.stdout!.on('data', opts.onStdout);
  child.stderr!.on('data', opts.onStderr);
  return {
    pid,
    exited,
    signal(sig, graceMs) {
      if (graceMs !== undefined) stopDeadline ??= Date.now() + graceMs;
      if (sig === 'SIGKILL') stopDeadline = null; // nothing left to wait for
      killGroup(pid, sig);
    },
  };
}
