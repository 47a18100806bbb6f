// A finished attempt's scratch folder on this machine holds copies of what the runner put in
// the store (logs, metrics, events, status; checkpoints and outputs): once the store has
// them, the copies go, so a 50 MB log is not kept twice.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { runKeys, runState, TERMINAL, type RunRecord } from '../runs/run-record.js';
import type { Store } from '../store/store.js';
import { ATTEMPT_FILES, type AttemptStatus } from './attempt-spec.js';
import { workPaths } from './attempt-runner.js';

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
    return runState(JSON.parse(record.toString('utf8')) as RunRecord) === 'succeeded';
  } catch {
    return false;
  }
}

/**
 * Removes a finished attempt's folder once the store holds each of its files (same size), and
 * once the run has succeeded its whole work folder (a finished run resumes nothing from its
 * checkpoints) when the outputs are stored too. Anything the store lacks stays; an unfinished
 * run keeps its checkpoints (a step committed here but never uploaded is adopted next time).
 */
export async function tidyAttempt(store: Store, workDir: string, unitId: string, attempt: number | 'predict'): Promise<void> {
  const paths = workPaths(workDir, attempt);
  let status: AttemptStatus;
  try {
    status = JSON.parse(readFileSync(path.join(paths.attempt, 'status.json'), 'utf8')) as AttemptStatus;
  } catch {
    return; // no final word from the runner: nothing here is known to be stored
  }
  if (!TERMINAL.has(status.state)) return;
  for (const name of ATTEMPT_FILES) {
    const local = statSync(path.join(paths.attempt, name), { throwIfNoEntry: false });
    if (local && (await store.stat(runKeys.attemptFile(unitId, attempt, name)))?.size !== local.size) return;
  }
  const outputsStored = holdsNoFile(paths.output) || (await store.stat(runKeys.outputsManifest(unitId))) !== null;
  const whole = status.state === 'succeeded' && outputsStored && (await runFinished(store, unitId, attempt, status.state));
  rmSync(whole ? workDir : paths.attempt, { recursive: true, force: true });
}
