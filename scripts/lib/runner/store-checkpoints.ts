// The checkpoint protocol against a store: upload a committed step (blobs first, manifest
// last), find and download the newest step whose manifest verifies, prune old steps.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManifestError, parseManifest, sameFiles, serializeManifest, verifyStep, type CkptManifest } from '../ckpt/checkpoint.js';
import { mapLimit } from '../map-limit.js';
import { runKeys } from '../store/run-keys.js';
import { CorruptObject, type Store } from '../store/store.js';
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

/**
 * Uploads a locally committed step. Each blob is verified after upload; the manifest goes last,
 * as the bytes read before the blobs, which must say what `manifest` says: a re-save of the step
 * meanwhile cannot pair its new manifest with the blobs uploaded here.
 */
export async function uploadStep(
  store: Store,
  runId: string,
  stepDir: string,
  manifest: CkptManifest,
): Promise<{ key: string; sha256: string }> {
  const text = await readFile(path.join(stepDir, MANIFEST));
  if (serializeManifest(parseManifest(text.toString('utf8'), path.join(stepDir, MANIFEST))) !== serializeManifest(manifest)) {
    throw new Error(`step ${manifest.step}: manifest.json changed since the step was verified`);
  }
  await mapLimit(manifest.files, 4, async (f) => {
    const stored = await store.put(runKeys.ckptFile(runId, manifest.step, f.path), path.join(stepDir, f.path), { size: f.size, sha256: f.sha256 });
    if (stored.sha256 !== f.sha256 || stored.size !== f.size) {
      throw new Error(`step ${manifest.step}: ${f.path} changed while it was uploaded`);
    }
  });
  const key = runKeys.ckptFile(runId, manifest.step, MANIFEST);
  const stored = await store.putBytes(key, text);
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

/** Evidence that a stored step is not there to restore: no manifest, one that does not parse, or a file missing or unlike it. */
class UnusableStep extends Error {}

/**
 * The store could not be read (a connection reset, a 503) after a few tries. Nothing was skipped
 * or deleted on its account: the attempt ends, and the next one restores from the store again.
 */
export class StoreReadError extends Error {}

export interface ReadRetry {
  tries: number;
  /** before the 2nd try; doubled before each later one */
  delayMs: number;
}
const READ_RETRY: ReadRetry = { tries: 3, delayMs: 1000 };

/** `fn`, tried again on an error that says nothing about the step (not evidence, not a full disk). */
async function retried<T>(what: string, retry: ReadRetry, report: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof UnusableStep || isDiskProblem(err)) throw err;
      const message = (err as Error).message;
      if (tries >= retry.tries) throw new StoreReadError(`cannot read ${what} from the store: ${message} (tried ${tries} times)`, { cause: err });
      report(`reading ${what} from the store failed (${message}); trying again`);
      await sleep(retry.delayMs * 2 ** (tries - 1));
    }
  }
}

/** The stored step's manifest: its bytes and what they say. */
async function storedManifest(store: Store, runId: string, step: number): Promise<{ text: Buffer; manifest: CkptManifest }> {
  const key = runKeys.ckptFile(runId, step, MANIFEST);
  const text = await store.getBytes(key);
  if (!text) throw new UnusableStep('no manifest (partial upload)');
  let manifest: CkptManifest;
  try {
    manifest = parseManifest(text.toString('utf8'), `${store.url}/${key}`);
  } catch (err) {
    if (err instanceof ManifestError) throw new UnusableStep(err.message);
    throw err;
  }
  if (manifest.step !== step) throw new UnusableStep(`manifest says step ${manifest.step}`);
  return { text, manifest };
}

/** One blob of a step into `dest`; an error is evidence (UnusableStep) only when the object itself is wrong. */
async function downloadBlob(store: Store, key: string, f: CkptManifest['files'][number], dest: string): Promise<void> {
  const got = await store.get(key, dest).catch(async (err: Error) => {
    if (isDiskProblem(err)) throw err;
    if (err instanceof CorruptObject) throw new UnusableStep(`${key} is corrupt (${err.message})`);
    // Whether the object is missing or unlike its manifest, or only this read of it failed.
    const now = await store.stat(key).catch(() => {
      throw err;
    });
    if (!now) throw new UnusableStep(`${key} is missing`);
    if (now.size !== f.size || now.sha256 !== f.sha256) throw new UnusableStep(`${key} is corrupt (${err.message})`);
    throw err;
  });
  if (got.sha256 !== f.sha256 || got.size !== f.size) throw new UnusableStep(`${key} is corrupt (sha256 does not match its manifest)`);
}

/** Downloads a step beside `destDir`, then puts it in its place; on an error, `destDir` is as it was. */
async function downloadStep(store: Store, runId: string, stored: { text: Buffer; manifest: CkptManifest }, destDir: string): Promise<void> {
  const { text, manifest } = stored;
  const tmpDir = `${destDir}.partial`;
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  // Every read ends before the folder goes; evidence against the step outweighs a failed read.
  let failure: unknown = null;
  await mapLimit(manifest.files, 4, async (f) => {
    if (failure !== null) return;
    await downloadBlob(store, runKeys.ckptFile(runId, manifest.step, f.path), f, path.join(tmpDir, f.path)).catch((err: unknown) => {
      if (err instanceof UnusableStep && !(failure instanceof UnusableStep)) failure = err;
      failure ??= err;
    });
  });
  if (failure === null) await writeFile(path.join(tmpDir, MANIFEST), text).catch((err: unknown) => (failure = err));
  if (failure !== null) {
    await rm(tmpDir, { recursive: true, force: true });
    throw failure;
  }
  await rm(destDir, { recursive: true, force: true });
  await rename(tmpDir, destDir);
}

/**
 * Whether the stored step of `local`'s number is an earlier save than `local`, with other files
 * (the experiment saved the step again, and that save never reached the store): true also for a
 * stored manifest gone or broken since it was listed. The same files saved again are no news. A store that cannot be read throws a StoreReadError.
 */
export async function storedSaveIsOlder(store: Store, runId: string, local: CkptManifest, report: (line: string) => void, retry: ReadRetry = READ_RETRY): Promise<boolean> {
  const key = runKeys.ckptFile(runId, local.step, MANIFEST);
  const text = await retried(`checkpoint step ${local.step}`, retry, report, () => store.getBytes(key));
  if (!text) return true;
  let stored: CkptManifest;
  try {
    stored = parseManifest(text.toString('utf8'), key);
  } catch (err) {
    if (err instanceof ManifestError) return true;
    throw err;
  }
  return !sameFiles(stored, local) && stored.created_at < local.created_at;
}

/**
 * Makes `ckptDir` hold exactly the newest stored step that verifies, downloading it unless an
 * identical verified copy is already there. A step is skipped (and reported) only on evidence:
 * no manifest, one that does not parse, a file missing or unlike its manifest. Any other error
 * (the network, the store answering 503) is tried again a little, then thrown as a
 * StoreReadError, with `ckptDir` as it was: a good step is never passed over for a worse one.
 */
export async function restoreLatest(
  store: Store,
  runId: string,
  ckptDir: string,
  report: (line: string) => void,
  retry: ReadRetry = READ_RETRY,
): Promise<number | null> {
  await mkdir(ckptDir, { recursive: true });
  const steps = (await retried('the list of checkpoints', retry, report, () => storedSteps(store, runId))).reverse();
  for (const { step, hasManifest } of steps) {
    if (!hasManifest) {
      report(`skipping stored step ${step}: no manifest (partial upload)`);
      continue;
    }
    const dest = path.join(ckptDir, String(step));
    try {
      await retried(`checkpoint step ${step}`, retry, report, async () => {
        const stored = await storedManifest(store, runId, step);
        if (!(await hasIdenticalLocalCopy(dest, stored.text))) await downloadStep(store, runId, stored, dest);
      });
    } catch (err) {
      if (!(err instanceof UnusableStep)) throw err; // a full disk here, or a store that cannot be read
      report(`skipping stored step ${step}: ${err.message}`);
      continue;
    }
    await removeOtherSteps(ckptDir, step);
    return step;
  }
  await removeOtherSteps(ckptDir, null);
  return null;
}

/** True when `dest` already holds a verified copy of the stored step (same manifest bytes). */
async function hasIdenticalLocalCopy(dest: string, storedManifest: Buffer): Promise<boolean> {
  const mine = await readFile(path.join(dest, MANIFEST)).catch(() => null);
  return mine !== null && mine.equals(storedManifest) && (await verifyStep(dest)).ok;
}

async function removeOtherSteps(ckptDir: string, keep: number | null): Promise<void> {
  for (const name of await readdir(ckptDir)) {
    if (name !== String(keep)) await rm(path.join(ckptDir, name), { recursive: true, force: true });
  }
}
