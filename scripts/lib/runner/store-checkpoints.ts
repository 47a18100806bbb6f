// The checkpoint protocol against a store: upload a committed step (blobs first, manifest
// last), find and download the newest step whose manifest verifies, prune old steps.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseManifest, verifyStep, type CkptManifest } from '../ckpt/checkpoint.js';
import { mapLimit } from '../map-limit.js';
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';
import { isDiskProblem } from '../ui/errors.js';

const MANIFEST = 'manifest.json';

/** Steps present in the store for a run, with whether their manifest object exists. */
export async function storedSteps(store: Store, runId: string): Promise<{ step: number; hasManifest: boolean }[]> {
  const prefix = runKeys.ckptDir(runId);
  const steps = new Map<number, boolean>();
  for (const key of await store.list(prefix)) {
    const [stepName, ...rest] = key.slice(prefix.length).split('/');
    if (!/^\d+$/.test(stepName ?? '')) continue;
    const step = Number(stepName);
    steps.set(step, (steps.get(step) ?? false) || rest.join('/') === MANIFEST);
  }
  return [...steps].map(([step, hasManifest]) => ({ step, hasManifest })).sort((a, b) => a.step - b.step);
}

/** Uploads a locally committed step. Each blob is verified after upload; the manifest goes last. */
export async function uploadStep(
  store: Store,
  runId: string,
  stepDir: string,
  manifest: CkptManifest,
): Promise<{ key: string; sha256: string }> {
  await mapLimit(manifest.files, 4, async (f) => {
    const stored = await store.put(runKeys.ckptFile(runId, manifest.step, f.path), path.join(stepDir, f.path), { size: f.size, sha256: f.sha256 });
    if (stored.sha256 !== f.sha256 || stored.size !== f.size) {
      throw new Error(`step ${manifest.step}: ${f.path} changed while it was uploaded`);
    }
  });
  const key = runKeys.ckptFile(runId, manifest.step, MANIFEST);
  const stored = await store.put(key, path.join(stepDir, MANIFEST));
  return { key, sha256: stored.sha256 };
}

/** Deletes a stored step: the manifest first, so a half-deleted step is never "committed". */
export async function deleteStoredStep(store: Store, runId: string, step: number): Promise<void> {
  const prefix = `${runKeys.ckptDir(runId)}${step}/`;
  await store.delete(`${prefix}${MANIFEST}`);
  for (const key of await store.list(prefix)) await store.delete(key);
}

/**
 * Keeps the newest `keep` committed steps in the store; returns the steps deleted. `beforeDelete`
 * records each step first (a throw stops the prune), so no step goes unrecorded; `recorded` then
 * runs once before the first deletion (the runner copies its event log to the store there, so a
 * worker that dies mid-prune has told the store what it was deleting).
 */
export async function pruneStoredSteps(
  store: Store,
  runId: string,
  keep: number,
  beforeDelete: (step: number) => void = () => {},
  recorded: () => Promise<void> = async () => {},
): Promise<number[]> {
  const committed = (await storedSteps(store, runId)).filter((s) => s.hasManifest).map((s) => s.step);
  const doomed = committed.slice(0, Math.max(0, committed.length - keep));
  const announced: number[] = [];
  try {
    for (const step of doomed) {
      beforeDelete(step);
      announced.push(step);
    }
  } finally {
    if (announced.length) await recorded();
    for (const step of announced) await deleteStoredStep(store, runId, step);
  }
  return doomed;
}

async function downloadStep(store: Store, runId: string, step: number, destDir: string): Promise<CkptManifest> {
  const text = await store.getBytes(runKeys.ckptFile(runId, step, MANIFEST));
  if (!text) throw new Error('no manifest (partial upload)');
  const manifest = parseManifest(text.toString('utf8'), `${store.url}/${runKeys.ckptFile(runId, step, MANIFEST)}`);
  if (manifest.step !== step) throw new Error(`manifest says step ${manifest.step}`);
  const tmpDir = `${destDir}.partial`;
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  await mapLimit(manifest.files, 4, async (f) => {
    const key = runKeys.ckptFile(runId, step, f.path);
    const got = await store.get(key, path.join(tmpDir, f.path)).catch(async (err: Error) => {
      if (isDiskProblem(err)) throw err;
      if (await store.stat(key).catch(() => null)) throw new Error(`${key} is corrupt (${err.message})`);
      return null;
    });
    if (!got) throw new Error(`${key} is missing`);
    if (got.sha256 !== f.sha256 || got.size !== f.size) throw new Error(`${key} is corrupt (sha256 does not match its manifest)`);
  });
  await writeFile(path.join(tmpDir, MANIFEST), text);
  await rm(destDir, { recursive: true, force: true });
  await rename(tmpDir, destDir);
  return manifest;
}

/**
 * Makes `ckptDir` hold exactly the newest stored step that verifies, downloading it unless an
 * identical verified copy is already there. Steps that fail are reported and skipped.
 */
export async function restoreLatest(
  store: Store,
  runId: string,
  ckptDir: string,
  report: (line: string) => void,
): Promise<number | null> {
  await mkdir(ckptDir, { recursive: true });
  const steps = (await storedSteps(store, runId)).reverse();
  for (const { step, hasManifest } of steps) {
    if (!hasManifest) {
      report(`skipping stored step ${step}: no manifest (partial upload)`);
      continue;
    }
    const dest = path.join(ckptDir, String(step));
    try {
      if (!(await hasIdenticalLocalCopy(store, runId, step, dest))) await downloadStep(store, runId, step, dest);
      await removeOtherSteps(ckptDir, step);
      return step;
    } catch (err) {
      if (isDiskProblem(err)) throw err; // the step is fine; there is no room for it here
      report(`skipping stored step ${step}: ${(err as Error).message}`);
    }
  }
  await removeOtherSteps(ckptDir, null);
  return null;
}

/** True when `dest` already holds a verified copy of the stored step (same manifest bytes). */
async function hasIdenticalLocalCopy(store: Store, runId: string, step: number, dest: string): Promise<boolean> {
  const local = await verifyStep(dest);
  if (!local.ok) return false;
  const remote = await store.getBytes(runKeys.ckptFile(runId, step, MANIFEST));
  const mine = await readFile(path.join(dest, MANIFEST)).catch(() => null);
  return remote !== null && mine !== null && remote.equals(mine);
}

async function removeOtherSteps(ckptDir: string, keep: number | null): Promise<void> {
  for (const name of await readdir(ckptDir)) {
    if (name !== String(keep)) await rm(path.join(ckptDir, name), { recursive: true, force: true });
  }
}
