// Reading and writing run records: run.json in the store is the truth, the SQLite db mirrors it.
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { appendLedger, type AppendOptions, type LedgerFields } from '../ledger/ledger.js';
import type { Project } from '../project.js';
import { claimUnit } from '../runner/attempt-fence.js';
import { sealAttemptFiles } from '../runner/attempt-files.js';
import { deleteStoredStep, storedSteps } from '../runner/store-checkpoints.js';
import { anchorBeforeAppend, LEDGER_KEY_VAR, ledgerIdOf } from '../ledger/anchor.js';
import { readDotEnv } from '../secrets/dotenv.js';
import { UserError } from '../ui/errors.js';
import { parseRunJson, runJson, runKeys, type RunRecord } from './run-record.js';
import type { Journal } from './supervision.js';

// This machine's ledger id, once it has a line: named in every run record it saves.
const ledgerIds = new WeakMap<Project, string>();

async function noteLedger(project: Project, run: RunRecord): Promise<void> {
  let id = ledgerIds.get(project);
  if (!id) {
    const read = await ledgerIdOf(project.ledgerPath);
    if (!read) return; // no line yet: the next save names it
    ledgerIds.set(project, (id = read));
  }
  if (!run.ledgers?.includes(id)) run.ledgers = [...(run.ledgers ?? []), id];
}

export async function saveRun(project: Project, run: RunRecord): Promise<void> {
  await noteLedger(project, run);
  const json = runJson(run);
  await project.store.putBytes(runKeys.record(run.run_id), json);
  project.db.upsert(run, json);
}

/**
 * The run's record: from this machine's index, else from the store (and indexed). `fresh`
 * reads the store first, for a run another machine may be writing (an agent in the store).
 */
export async function loadRun(project: Project, runId: string, opts: { fresh?: boolean } = {}): Promise<RunRecord> {
  if (!/^[a-z0-9][a-z0-9_-]*-\d{8}T\d{4}-[0-9a-f]{8}(-\d+)?$/.test(runId)) {
    throw new UserError(`run: ${JSON.stringify(runId)} is not a run id; list runs with make status`);
  }
  const fromDb = opts.fresh ? null : project.db.get(runId);
  if (fromDb) return fromDb;
  const bytes = await project.store.getBytes(runKeys.record(runId));
  if (!bytes) throw new UserError(`run: no run ${runId} in ${project.store.url}; list runs with make status`);
  const run = parseRunJson(bytes.toString('utf8'));
  project.db.upsert(run);
  return run;
}

/**
 * Removes a run that could not be created whole (its ledger entry failed, say): every object
 * under it, its digest index entry and its row, so no half-made run is left to resume.
 */
export async function discardRun(project: Project, runId: string, digest: string): Promise<void> {
  const { store } = project;
  project.db.remove(runId);
  await store.delete(runKeys.digestIndex(digest, runId));
  for (const key of await store.list(runKeys.dir(runId))) await store.delete(key);
  if (store.localDir !== null) {
    // A folder store also keeps the emptied folders; the digest's goes only when no other run has it.
    await rm(path.join(store.localDir, runKeys.dir(runId)), { recursive: true, force: true });
    await rmdir(path.join(store.localDir, runKeys.digestIndex(digest))).catch(() => {});
  }
}

/** The key that signs the ledger's store anchor: SWITCHYARD_LEDGER_KEY in .env, if set. */
export function ledgerKey(project: Project): string | null {
  return readDotEnv(project.root)[LEDGER_KEY_VAR] || null;
}

// One anchor hook per project: it remembers the anchor it wrote last, so a process's own
// appends do not read it back.
const anchoring = new WeakMap<Project, AppendOptions>();

/** Appends one entry to the project's ledger, anchoring it in the store first. */
export function recordInLedger<T extends string>(project: Project, type: T, fields: LedgerFields<T>) {
  let opts = anchoring.get(project);
  if (!opts) anchoring.set(project, (opts = { beforeAppend: anchorBeforeAppend(project.store, ledgerKey(project)) }));
  return appendLedger(project.ledgerPath, type, fields, opts);
}

/** The supervisor's view of a project: the run record, the ledger, the committed steps in the store. */
export function runJournal(project: Project): Journal {
  return {
    save: (run) => saveRun(project, run),
    record: async (type, fields) => void (await recordInLedger(project, type, fields)),
    storedSteps: async (unit) => (await storedSteps(project.store, unit)).filter((s) => s.hasManifest).map((s) => s.step),
    dropStep: (unit, step) => deleteStoredStep(project.store, unit, step),
    claim: (unit, attempt) => claimUnit(project.store, unit, attempt),
    sealAttemptFiles: (unit, attempt) => sealAttemptFiles(project.store, unit, attempt),
    // Only after a lost attempt: the ledger reader stays off every verb's start.
    storedEvents: async (unit, attempt) => (await import('./lost-steps.js')).storedEvents(project, unit, attempt),
    // Only for an attempt an orchestrator that died had queued: kept off every verb's start too.
    startsRecorded: async (runId, attempts) => {
      const state = await (await import('../audit/ledger-state.js')).runLedgerState(project.ledgerPath, runId);
      return attempts.map((a) => (state.startedAttempt(a.unitKey) ?? 0) >= a.attempt);
    },
    lostSteps: async (runId, unit, attempts) => (await (await import('./lost-steps.js')).lostSteps(project, runId, unit, new Set(attempts))).map((s) => ({ step: s.step, attempt: s.attempt! })),
  };
}
