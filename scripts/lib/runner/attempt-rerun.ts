// A rerun of an attempt: Google Cloud Batch runs a task again, on a new VM, after its VM failed
// (a spot preemption), and the rerun is the same attempt. The orchestrator has read the
// attempt's events.jsonl in the store up to some line, so a rerun continues the attempt's files
// as the store holds them instead of starting them anew: its lines come after theirs, and no
// line is missed or read twice. What the failed run did after it last copied its files is read
// back from the store's steps: a step it uploaded whose event never reached the store is
// announced now, and a prune it announced (prunes reach the store before their deletions) is
// carried through, so the ledger names exactly the steps the store holds.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseManifest } from '../ckpt/checkpoint.js';
import { sha256Hex } from '../hash.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';
import { EVENTS_FILE, type RunnerEvent } from './attempt-spec.js';
import { parseEventLines } from './jsonl.js';
import { deleteStoredStep, storedSteps } from './store-checkpoints.js';

/** The attempt files a rerun continues (status.json is each run's own). */
const CONTINUED = ['stdout.log', 'stderr.log', 'metrics.jsonl', EVENTS_FILE] as const;

/**
 * Brings the store's copy of each attempt file into the attempt folder, unless this worker has
 * its own (a rebooted VM that kept its disk: its copy is the longer, the store's a prefix of it).
 */
export async function continueAttemptFiles(store: Store, unit: string, attempt: number, dir: string): Promise<void> {
  for (const name of CONTINUED) {
    const file = path.join(dir, name);
    if (existsSync(file)) continue;
    const bytes = await store.getBytes(runKeys.attemptFile(unit, attempt, name));
    if (bytes) await writeFileAtomically(file, bytes);
  }
}

export interface StepsToSettle {
  /** steps the store holds committed that no event of the attempt names: maybe its own uploads */
  unnamed: number[];
  /** steps the attempt announced pruned that the store still holds (some or all of) */
  unfinished: number[];
}

/** What the attempt's events say of each step, against the steps the store holds. Pure. */
export function stepsToSettle(events: readonly (RunnerEvent | null)[], stored: readonly { step: number; hasManifest: boolean }[]): StepsToSettle {
  const named = new Set<number>();
  const pruned = new Set<number>();
  for (const e of events) {
    if (e?.type === 'ckpt.committed' || e?.type === 'ckpt.pruned') named.add(e.step);
    if (e?.type === 'ckpt.pruned') pruned.add(e.step);
  }
  return {
    unnamed: stored.filter((s) => s.hasManifest && !named.has(s.step)).map((s) => s.step),
    unfinished: stored.filter((s) => pruned.has(s.step)).map((s) => s.step),
  };
}

/**
 * Settles what the failed run of this attempt left unsaid: finishes the prunes it announced, and
 * announces (`ckpt.committed`) each step it uploaded without a word, known by its manifest's
 * attempt; steps of earlier attempts are theirs, recorded already.
 */
export async function settleRerunSteps(store: Store, unit: string, attempt: number, dir: string, emit: (e: RunnerEvent) => void): Promise<void> {
  const log = path.join(dir, EVENTS_FILE);
  const events = parseEventLines<RunnerEvent>(existsSync(log) ? readFileSync(log, 'utf8') : '');
  const { unnamed, unfinished } = stepsToSettle(events, await storedSteps(store, unit));
  for (const step of unfinished) await deleteStoredStep(store, unit, step);
  for (const step of unnamed) {
    const key = runKeys.ckptFile(unit, step, 'manifest.json');
    const bytes = await store.getBytes(key);
    if (bytes && ownStep(bytes, key, attempt)) emit({ type: 'ckpt.committed', step, manifest: key, manifest_sha256: sha256Hex(bytes) });
  }
}

/** Whether a stored manifest was written by `attempt`; one that does not parse is no one's (restores skip it too). */
function ownStep(bytes: Buffer, key: string, attempt: number): boolean {
  try {
    return parseManifest(bytes.toString('utf8'), key).attempt === attempt;
  } catch {
    return false;
  }
}
