// Where and when a unit's next attempt goes after one that ended on its own accord (preempted,
// lost, timeout with a checkpoint, failed within `retry_on_error`): pure rules the supervisor
// applies, so tests pin them without a backend.
import type { Capabilities } from '../backends/backend.js';
import type { AttemptRecord } from './run-record.js';
import type { ExperimentSpec } from '../spec/experiment.js';

/** The first retry goes at once (a preemption is no reason to wait); later ones wait 2 s, 4 s, ... up to a minute. */
export const RETRY_BASE_MS = 2000;
export const RETRY_CAP_MS = 60_000;

/** How long to wait before the next attempt, after `failures` resumable ends in a row. */
export function retryDelayMs(failures: number, baseMs = RETRY_BASE_MS, capMs = RETRY_CAP_MS): number {
  if (failures <= 1) return 0;
  return Math.min(capMs, baseMs * 2 ** (failures - 2));
}

/**
 * The unit's attempts that ended without progress, in a row: back to one that committed a new
 * checkpoint (a spot VM preempted every hour after an hour's work is no reason to wait longer
 * each time) or that succeeded or was stopped.
 */
export function endsInARow(attempts: readonly AttemptRecord[]): number {
  let n = 0;
  for (const a of [...attempts].reverse()) {
    if (a.state === 'succeeded' || a.state === 'cancelled') break;
    if (a.state === 'queued' || a.state === 'running' || a.state === 'pending') continue;
    if (a.last_step !== null && a.last_step !== a.restored_step) break;
    n++;
  }
  return n;
}

/**
 * Whether an attempt's end starts the next one: preempted, lost, a timeout with a checkpoint,
 * and a failure (the program's own error) only while the unit's failures stay within the
 * spec's `retry_on_error`.
 */
export function resumes(ended: AttemptRecord, attempts: readonly AttemptRecord[], spec: Pick<ExperimentSpec, 'retry_on_error'>): boolean {
  switch (ended.state) {
    case 'preempted':
    case 'lost':
      return true;
    case 'timeout':
      return ended.last_step !== null;
    case 'failed':
      return attempts.filter((a) => a.state === 'failed').length <= (spec.retry_on_error ?? 0);
    default:
      return false;
  }
}

/**
 * Whether a backend offers what the spec's resources ask (the check a run's first backend gets
 * before it opens). Runs recorded before `resources` existed ask nothing.
 */
export function fitsResources(spec: { resources?: Pick<ExperimentSpec['resources'], 'gpus' | 'spot'> }, have: Capabilities): boolean {
  const want = spec.resources ?? { gpus: 0, spot: false };
  return want.gpus <= have.gpus && (!want.spot || have.spot);
}
