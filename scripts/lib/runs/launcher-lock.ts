// Which process follows a run: `.switchyard/launchers/<run_id>.pid` (its pid and start time,
// against pid reuse), held by the orchestrator that starts the run's attempts (make train,
// replay, retry) for as long as it follows them. Only that process starts
// attempts and records their events and ends, so two shells never run one attempt twice or
// write it into the ledger twice; the other verbs look, ask and pull, and leave the recording
// to it. A holder that died (kill -9, a crash) holds nothing: the next orchestrator takes over.
//
// `make stop` from another shell asks the holder to stop through `<run_id>.stop` beside it (the
// holder it asks, and force): the holder looks once a tick and stops as Ctrl-C there would, so
// units still queued there never start. The request names the holder, and a new holder removes
// any it finds, so a stop meant for one launch never stops a later one.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { withFileLock } from '../ledger/file-lock.js';
import { isAlive, processStartTime } from '../process-alive.js';
import type { Project } from '../project.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import type { RunRecord } from './run-record.js';

const lockFile = (project: Project, runId: string) => path.join(project.stateDir, 'launchers', `${runId}.pid`);
const stopFile = (project: Project, runId: string) => path.join(project.stateDir, 'launchers', `${runId}.stop`);
const myHold = () => `${process.pid} ${processStartTime(process.pid) ?? ''}\n`;

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
  const mine = myHold();
  mkdirSync(path.dirname(file), { recursive: true });
  return withFileLock(`${file}.lock`, async () => {
    const held = readHolder(file);
    if (held === mine) return () => {};
    if (liveHolder(held) !== null) return null;
    rmSync(stopFile(project, runId), { force: true }); // asked of an earlier holder
    await writeFileAtomically(file, mine, { durable: false }); // a power cut ends the holder too
    return () => {
      if (readHolder(file) !== mine) return;
      rmSync(stopFile(project, runId), { force: true }); // carried out: the run was stopped, or ended first
      rmSync(file, { force: true });
    };
  });
}

/**
 * make stop: asks the live process that follows the run (another one) to stop it, as Ctrl-C
 * there would: live attempts checkpoint and stop, queued units never start. Returns its pid, or
 * null when there is none.
 */
export async function askLauncherToStop(project: Project, runId: string, opts: { force: boolean }): Promise<number | null> {
  const holder = readHolder(lockFile(project, runId));
  const pid = liveHolder(holder);
  if (pid === null || pid === process.pid) return null;
  await writeFileAtomically(stopFile(project, runId), JSON.stringify({ holder, force: opts.force }) + '\n', { durable: false });
  return pid;
}

/**
 * For the process that holds the run: whether make stop asked it to stop, and how. One
 * existsSync while nothing was asked; a request that names another holder is an earlier
 * launch's, removed.
 */
export function stopAskedOf(project: Project, runId: string): () => { force: boolean } | null {
  const file = stopFile(project, runId);
  const mine = myHold();
  return () => {
    if (!existsSync(file)) return null;
    let asked: { holder?: unknown; force?: unknown } | null = null;
    try {
      asked = JSON.parse(readFileSync(file, 'utf8')) as { holder?: unknown; force?: unknown };
    } catch {
      return null; // gone meanwhile
    }
    if (asked?.holder === mine) return { force: asked.force === true };
    rmSync(file, { force: true });
    return null;
  };
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
