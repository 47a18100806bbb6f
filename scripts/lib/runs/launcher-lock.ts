// Which process follows a run: `.switchyard/launchers/<run_id>.pid` (its pid and start time,
// against pid reuse), held by the orchestrator that starts the run's attempts (make train,
// replay, retry) for as long as it follows them. Only that process starts
// attempts and records their events and ends, so two shells never run one attempt twice or
// write it into the ledger twice; the other verbs look, ask and pull, and leave the recording
// to it. A holder that died (kill -9, a crash) holds nothing: the next orchestrator takes over.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { withFileLock } from '../ledger/file-lock.js';
import { isAlive, processStartTime } from '../process-alive.js';
import type { Project } from '../project.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import type { RunRecord } from './run-record.js';

const lockFile = (project: Project, runId: string) => path.join(project.stateDir, 'launchers', `${runId}.pid`);

/** The file's text: `<pid> <start time>`, or null when there is none. */
function readHolder(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function liveHolder(text: string | null): number | null {
  const [pidText, start] = (text ?? '').trim().split(' ');
  const pid = Number(pidText);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid, start || null) ? pid : null;
}

/** The pid of another live process following `runId`, or null (none, one that died, or this one). */
export function launcherOf(project: Project, runId: string): number | null {
  const pid = liveHolder(readHolder(lockFile(project, runId)));
  return pid === process.pid ? null : pid;
}

/**
 * Makes this process the one that follows the run; returns the release. Null when another live
 * process does. A dead holder's file is taken over; one this process holds already is kept (its
 * first hold releases it). Looking and taking happen under a short cross-process lock, so two
 * shells taking over the same dead holder cannot both win.
 */
export async function holdLauncher(project: Project, runId: string): Promise<(() => void) | null> {
  const file = lockFile(project, runId);
  const mine = `${process.pid} ${processStartTime(process.pid) ?? ''}\n`;
  mkdirSync(path.dirname(file), { recursive: true });
  return withFileLock(`${file}.lock`, async () => {
    const held = readHolder(file);
    if (held === mine) return () => {};
    if (liveHolder(held) !== null) return null;
    await writeFileAtomically(file, mine, { durable: false }); // a power cut ends the holder too
    return () => {
      if (readHolder(file) === mine) rmSync(file, { force: true });
    };
  });
}

/** The refusal of a second orchestrator for a run that a live one follows, saying how to look at it. */
export function followedElsewhere(project: Project, run: RunRecord): UserError {
  const id = run.run_id;
  const who = `in another shell (pid ${launcherOf(project, id) ?? '?'})`;
  if (run.sharded || run.backends[0] === 'fleet') {
    return new UserError(`run ${id} is already followed by a launcher ${who}; make status run=${id} looks at it, make stop run=${id} stops it`);
  }
  return new UserError(`run ${id} is already running ${who}; follow it with make logs run=${id} follow=1, stop it with make stop run=${id}`);
}
