// From a pinned experiment to a run: resume the unfinished run with the same pins, report a
// finished one (a cache hit), or create a new run with its record, diff, data manifest, replay
// script and ledger entry. Finding and creating happen under a per-digest lock, and the run is
// claimed (launcher-lock.ts) before the lock is released, so of two `make train` started
// together one runs the experiment and the other is told who does.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Project } from '../project.js';
import { makeRunId } from '../pins/digest.js';
import { withFileLock } from '../ledger/file-lock.js';
import type { Experiment } from '../spec/experiment.js';
import type { BackendName } from '../config/define-config.js';
import { followedElsewhere, holdLauncher } from './launcher-lock.js';
import type { PinnedExperiment } from '../pins/pin-experiment.js';
import { runKeys, type RunRecord } from './run-record.js';
import { discardRun, loadRun, recordInLedger, saveRun } from './run-store.js';
import { settleAll } from '../settle-all.js';

/**
 * `release` gives up a new or resumed run (the verb ends); until then no other shell starts its
 * attempts. A finished run is not held.
 */
export interface OpenedRun {
  kind: 'new' | 'resume' | 'finished';
  run: RunRecord;
  release: () => void;
}

export interface OpenRunOptions {
  backends: BackendName[];
  /** a new run even when one with these pins exists (again=1, make replay) */
  again: boolean;
  /** the run this one replays (default: the finished run with these pins, when again) */
  replayOf?: string;
  /**
   * Checks that an attempt can start where it is going (the host answers, its key is known, it
   * is bootstrapped). Called before a run is created, so a refusal leaves nothing behind.
   */
  ready?: () => Promise<void>;
  /**
   * Called once the run to open is chosen (one to resume, or a new one about to be written),
   * before it is claimed: from then on the caller must let it open whole before it exits.
   */
  opening?: () => void;
}

/** One line that replays the run with the same pins, refusing if a pin no longer matches. */
export function replicateScript(runId: string): string {
  return [
    '#!/bin/sh',
    `# Replays ${runId} with the same pins; refuses, naming the pin, if code, data or env changed.`,
    '# Usage: sh replicate.sh [backend=<name> ...]   (run it inside a clone of the repository)',
    `cd "$(git rev-parse --show-toplevel)" && exec make replay run=${runId} "$@"`,
    '',
  ].join('\n');
}

function uniqueRunId(project: Project, base: string): string {
  let id = base;
  for (let n = 2; project.db.has(id); n++) id = `${base}-${n}`;
  return id;
}

/**
 * Writes a new run: its files, then its record and digest index entry, then its ledger entry.
 * If any of it fails, what was written is removed again: a run exists whole or not at all.
 */
async function createRun(project: Project, pinned: PinnedExperiment, run: RunRecord): Promise<void> {
  const { store } = project;
  const { pins } = pinned;
  try {
    // The run's files side by side (independent of each other), all before its record.
    const [manifest] = await settleAll([
      store.putBytes(runKeys.dataManifest(run.run_id), JSON.stringify(pinned.dataManifest) + '\n'),
      store.putBytes(runKeys.replicate(run.run_id), replicateScript(run.run_id)),
      pins.code.dirty_sha256 ? store.putBytes(runKeys.sourceDiff(run.run_id), pinned.diff) : Promise.resolve(null),
    ]);
    await saveRun(project, run);
    await store.putBytes(runKeys.digestIndex(pins.digest, run.run_id), '');
    await recordInLedger(project, 'run.created', {
      run_id: run.run_id,
      experiment: run.experiment,
      digest: pins.digest,
      pins,
      data_manifest: runKeys.dataManifest(run.run_id),
      data_manifest_sha256: manifest.sha256,
    });
  } catch (err) {
    // The first error is the one to report. Should the removal fail as well, what stays is a
    // run without attempts, which the next make train of these pins resumes.
    await discardRun(project, run.run_id, pins.digest).catch(() => {});
    throw err;
  }
}

function newRunRecord(project: Project, exp: Experiment, pinned: PinnedExperiment, backends: BackendName[], replayOf: string | null): RunRecord {
  const now = new Date();
  return {
    run_id: uniqueRunId(project, makeRunId(exp.slug, exp.smoke ? `${exp.name}-smoke` : exp.name, now, pinned.pins.digest)),
    experiment: exp.ref,
    created_at: now.toISOString(),
    pins: pinned.pins,
    spec: exp.spec,
    command: { train: exp.spec.train.command, predict: exp.spec.predict?.command ?? null },
    backends,
    replay_of: replayOf,
    units: [],
    sharded: false,
    ...(exp.smoke ? { smoke: true as const } : {}),
  };
}

/**
 * Runs with these pins: from the local index, or, on a machine that has never seen them
 * (a fresh clone sharing the store), from the store's digest index.
 */
async function runsWithDigest(project: Project, digest: string): Promise<{ finished: RunRecord | null; unfinished: RunRecord | null }> {
  if (!project.db.hasDigest(digest)) {
    const prefix = runKeys.digestIndex(digest);
    for (const key of await project.store.list(prefix)) await loadRun(project, key.slice(prefix.length));
  }
  return project.db.newestByDigest(digest);
}

/** Makes this process the run's only orchestrator, or refuses, naming the one that is. */
async function claim(project: Project, run: RunRecord): Promise<() => void> {
  const release = await holdLauncher(project, run.run_id);
  if (!release) throw followedElsewhere(project, run);
  return release;
}

/** Serializes finding and creating runs with one pin digest among the shells of this machine. */
function withDigestLock<T>(project: Project, digest: string, fn: () => Promise<T>): Promise<T> {
  const dir = path.join(project.stateDir, 'locks');
  mkdirSync(dir, { recursive: true });
  // Held for a store lookup and a run's creation: seconds, even on a slow object store.
  return withFileLock(path.join(dir, `digest-${digest}.lock`), fn, { staleMs: 5 * 60_000, timeoutMs: 5 * 60_000 });
}

export async function openRun(project: Project, exp: Experiment, pinned: PinnedExperiment, opts: OpenRunOptions): Promise<OpenedRun> {
  const { digest } = pinned.pins;
  let ready = !opts.ready;
  if (!ready && (opts.again || !project.db.hasDigest(digest))) {
    // A new run is the likely outcome: readied first, it takes one pass under the lock.
    await opts.ready!();
    ready = true;
  }
  for (;;) {
    const opened = await withDigestLock(project, digest, async (): Promise<OpenedRun | null> => {
      const { finished, unfinished } = await runsWithDigest(project, digest);
      if (!opts.again && unfinished) {
        opts.opening?.();
        return { kind: 'resume', run: unfinished, release: await claim(project, unfinished) };
      }
      if (!opts.again && finished) return { kind: 'finished', run: finished, release: () => {} };
      if (!ready) return null; // checked outside the lock, which a slow host would hold up
      const run = newRunRecord(project, exp, pinned, opts.backends, opts.replayOf ?? (opts.again ? (finished?.run_id ?? null) : null));
      opts.opening?.();
      const release = await claim(project, run); // before the run is visible to anyone
      try {
        await createRun(project, pinned, run);
      } catch (err) {
        release();
        throw err;
      }
      return { kind: 'new', run, release };
    });
    if (opened) return opened;
    await opts.ready!();
    ready = true;
  }
}
