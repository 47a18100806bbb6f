// Which process follows a fleet search's shards: `.switchyard/launchers/<run_id>.pid` (its pid
// and start time, against pid reuse), written by the launcher while it is attached. Only that
// process records the shards' events and ends, so two shells never write the same attempt into
// the ledger twice or start it twice; the other verbs look, ask and pull, and leave the
// recording to it.
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import path from 'node:path';
import { isAlive, processStartTime } from '../process-alive.js';
import type { Project } from '../project.js';

const lockFile = (project: Project, runId: string) => path.join(project.stateDir, 'launchers', `${runId}.pid`);

/** The pid of the live launcher following `runId`, or null (none, or one that died). */
export function launcherOf(project: Project, runId: string): number | null {
  let pid: number;
  let start: string | null;
  try {
    const [pidText, startText] = readFileSync(lockFile(project, runId), 'utf8').trim().split(' ');
    pid = Number(pidText);
    start = startText || null;
  } catch {
    return null;
  }
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid, start) ? pid : null;
}

/**
 * Makes this process the run's launcher; returns the release. Null when another live process
 * is (a dead one's file is taken over).
 */
export function holdLauncher(project: Project, runId: string): (() => void) | null {
  const file = lockFile(project, runId);
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    closeSync(openSync(file, 'wx'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (launcherOf(project, runId) !== null) return null;
  }
  writeFileSync(file, `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
  return () => {
    if (launcherOf(project, runId) === null) rmSync(file, { force: true }); // still ours
  };
}
