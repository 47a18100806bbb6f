// A finished attempt's scratch folder on this machine holds copies of what the runner put in
// the store (logs, metrics, events, status; checkpoints and outputs): once the store has
// them, the copies go, so a 50 MB log is not kept twice.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';
import { ATTEMPT_FILES, TERMINAL, type AttemptStatus } from './attempt-spec.js';
import { workPaths } from './attempt-runner.js';
import { AttemptFilesMirror } from './attempt-files.js';

/** Whether a folder holds no file at any depth (a missing one holds none). */
function holdsNoFile(dir: string): boolean {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).every((e) => e.isDirectory());
  } catch {
    return true;
  }
}

/** Whether the run is finished: this training attempt succeeded, or the stored record says so (a predict after it). */
async function runFinished(store: Store, unitId: string, attempt: number | 'predict', state: AttemptStatus['state']): Promise<boolean> {
  if (attempt !== 'predict') return state === 'succeeded';
  const record = await store.getBytes(runKeys.record(unitId)).catch(() => null);
  if (!record) return false;
  try {
    // A predict's run has one unit: run.json keeps its attempts at the top.
    return (JSON.parse(record.toString('utf8')) as { attempts?: { state: string }[] }).attempts?.at(-1)?.state === 'succeeded';
  } catch {
    return false;
  }
}

/**
 * For an attempt that has ended on this machine: puts each of its files the store lacks, or
 * holds an older copy of, into the store (a lost runner's last words), then removes its
 * folder once its status is final and the store holds every file; once the run has succeeded,
 * its whole work folder goes (a finished run resumes nothing from its checkpoints) if the
 * outputs are stored too. An unfinished run keeps its checkpoints: a step committed here but
 * never uploaded is adopted by its next attempt.
 */
export async function settleAttempt(store: Store, workDir: string, unitId: string, attempt: number | 'predict'): Promise<void> {
  const paths = workPaths(workDir, attempt);
  // The runner only appends to its files (status.json is rewritten whole): the local copy is the
  // newest. What changed goes up, with the attempt's file manifest that make pull checks against.
  await (await new AttemptFilesMirror(store, unitId, attempt, paths.attempt).load()).copy(ATTEMPT_FILES, { changedOnly: true });
  let status: AttemptStatus;
  try {
    status = JSON.parse(readFileSync(path.join(paths.attempt, 'status.json'), 'utf8')) as AttemptStatus;
  } catch {
    return; // no final word from the runner
  }
  if (!TERMINAL.has(status.state)) return;
  const outputsStored = holdsNoFile(paths.output) || (await store.stat(runKeys.outputsManifest(unitId))) !== null;
  const whole = status.state === 'succeeded' && outputsStored && (await runFinished(store, unitId, attempt, status.state));
  rmSync(whole ? workDir : paths.attempt, { recursive: true, force: true });
}
