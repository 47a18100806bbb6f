// What an attempt left behind when its worker went away: the runner events it copied to the
// store (with each checkpoint) that no poll delivered, and the steps it committed that never
// reached this machine's store (or that its runner pruned there, unheard of).
import { runLedgerState, type LiveStep } from '../audit/ledger-state.js';
import type { Project } from '../project.js';
import { EVENTS_FILE, type RunnerEvent } from '../runner/attempt-spec.js';
import { parseEventLines } from '../runner/jsonl.js';
import { storedSteps } from '../runner/store-checkpoints.js';
import { runKeys } from '../store/run-keys.js';

/** The attempt's events as its runner last copied them to the store ([] if it never did); null for a damaged line. */
export async function storedEvents(project: Project, unit: string, attempt: number): Promise<(RunnerEvent | null)[]> {
  const bytes = await project.store.getBytes(runKeys.attemptFile(unit, attempt, EVENTS_FILE)).catch(() => null);
  return bytes ? parseEventLines<RunnerEvent>(bytes.toString('utf8')) : [];
}

/** Steps the ledger has live from these attempts (committed while they ran) that the store does not hold. */
export async function lostSteps(project: Project, runId: string, unit: string, attempts: ReadonlySet<number>): Promise<LiveStep[]> {
  const state = await runLedgerState(project.ledgerPath, runId);
  const home = new Set((await storedSteps(project.store, unit)).filter((s) => s.hasManifest).map((s) => s.step));
  return state.liveSteps(unit).filter((s) => s.attempt !== null && attempts.has(s.attempt) && !home.has(s.step));
}
