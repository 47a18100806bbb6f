// From an experiment to a run: pin it, then resume the unfinished run with the same pins,
// report a finished one (a cache hit), or create a new run with its record, diff, data
// manifest, replay script and ledger entry.
import type { Project } from '../project.js';
import { makeRunId } from '../pins/digest.js';
import type { Experiment } from '../spec/experiment.js';
import type { BackendName } from '../config/define-config.js';
import { pinExperiment, type PinnedExperiment } from '../pins/pin-experiment.js';
import { runKeys, runState, type RunRecord } from './run-record.js';
import { loadRun, recordInLedger, saveRun } from './run-store.js';

export type OpenedRun =
  | { kind: 'new'; run: RunRecord }
  | { kind: 'resume'; run: RunRecord }
  | { kind: 'finished'; run: RunRecord };

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
  for (let n = 2; project.db.get(id); n++) id = `${base}-${n}`;
  return id;
}

export async function createRun(
  project: Project,
  exp: Experiment,
  pinned: PinnedExperiment,
  backends: BackendName[],
  replayOf: string | null,
): Promise<RunRecord> {
  const { pins } = pinned;
  const now = new Date();
  const run: RunRecord = {
    run_id: uniqueRunId(project, makeRunId(exp.slug, exp.name, now, pins.digest)),
    experiment: exp.ref,
    created_at: now.toISOString(),
    pins,
    spec: exp.spec,
    command: { train: exp.spec.train.command, predict: exp.spec.predict?.command ?? null },
    backends,
    replay_of: replayOf,
    units: [],
    sharded: false,
  };
  const { store } = project;
  if (pins.code.dirty_sha256) await store.putBytes(runKeys.sourceDiff(run.run_id), pinned.diff);
  const manifest = await store.putBytes(runKeys.dataManifest(run.run_id), JSON.stringify(pinned.dataManifest) + '\n');
  await store.putBytes(runKeys.replicate(run.run_id), replicateScript(run.run_id));
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
  return run;
}

/**
 * Runs with these pins: from the local index, or, on a machine that has never seen them
 * (a fresh clone sharing the store), from the store's digest index.
 */
async function runsWithDigest(project: Project, digest: string): Promise<RunRecord[]> {
  const local = project.db.byDigest(digest);
  if (local.length) return local;
  const prefix = runKeys.digestIndex(digest);
  for (const key of await project.store.list(prefix)) await loadRun(project, key.slice(prefix.length));
  return project.db.byDigest(digest);
}

export async function openRun(
  project: Project,
  exp: Experiment,
  opts: { backends: BackendName[]; again: boolean; seed?: number },
): Promise<OpenedRun & { pinned: PinnedExperiment }> {
  const pinned = await pinExperiment(project.root, project.stateDir, exp, opts.seed);
  const same = await runsWithDigest(project, pinned.pins.digest);
  const finished = same.filter((r) => runState(r) === 'succeeded').at(-1);
  const unfinished = same.filter((r) => runState(r) !== 'succeeded').at(-1);
  if (!opts.again && unfinished) return { kind: 'resume', run: unfinished, pinned };
  if (!opts.again && finished) return { kind: 'finished', run: finished, pinned };
  const run = await createRun(project, exp, pinned, opts.backends, opts.again ? (finished?.run_id ?? null) : null);
  return { kind: 'new', run, pinned };
}
