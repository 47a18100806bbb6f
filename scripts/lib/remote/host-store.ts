// A host and the project's store. A store the host can reach itself (S3) is written by its
// runners directly; a store that is a folder on this machine is not, so the runner on the host
// writes the host's own store (<root>/store) and this machine copies runs home from it.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MANIFEST_NAME, STEP_NAME_RE } from '../ckpt/manifest.js';
import { runRsync } from '../ssh/rsync.js';
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';
import type { RemoteHost } from './remote-host.js';

/** The store URL a runner on the host writes to, relative to its repo folder. */
export function hostStoreUrl(store: Store): string {
  return store.localDir === null ? store.url : 'file://../store';
}

/**
 * Copies a unit's checkpoints, outputs and attempt files home from the host's own store. Steps
 * the runner there pruned stay home until the supervisor reads the prune from its events and
 * drops them here too, recorded, so the ledger and the store always agree.
 *
 * The commits (each step's manifest, the outputs manifest) are read first, the files second, and
 * a commit lands home only once every file it names is here: the runner writes files before
 * their commit, so a commit read first names files the second pass then finds. A pull cut off
 * halfway (its host going away), or a step the runner commits or prunes while the pull runs,
 * never leaves home a commit whose files are not all here; the next pull brings it.
 */
export async function pullUnit(host: RemoteHost, store: Store, unit: string): Promise<void> {
  if (store.localDir === null) return; // the runner wrote to the shared store
  const local = path.join(store.localDir, runKeys.dir(unit));
  mkdirSync(path.dirname(local), { recursive: true }); // rsync makes only the last folder
  const pull = { src: `${host.layout.store}/${runKeys.dir(unit)}`, target: host.target, direction: 'pull' } as const;
  const commits = mkdtempSync(path.join(os.tmpdir(), 'switchyard-pull-'));
  try {
    await runRsync({ ...pull, dest: commits, includes: ['/ckpt/', '/ckpt/*/', ...COMMIT_FILES], excludes: ['*'] });
    await runRsync({ ...pull, dest: local, excludes: COMMIT_FILES });
    await landCommits(store, unit, commits);
  } finally {
    rmSync(commits, { recursive: true, force: true });
  }
}

/** A unit folder's commit files, as rsync patterns anchored at the unit's folder. */
const OUTPUTS_MANIFEST = path.posix.basename(runKeys.outputsManifest('u'));
const COMMIT_FILES = [`/ckpt/*/${MANIFEST_NAME}`, `/${OUTPUTS_MANIFEST}`];

/** Writes home each commit read from the host (under `commits`) whose files are all home, at the sizes it names. */
async function landCommits(store: Store, unit: string, commits: string): Promise<void> {
  const local = path.join(store.localDir!, runKeys.dir(unit));
  const steps = await readdir(path.join(commits, 'ckpt')).catch(() => [] as string[]);
  const found = [
    ...steps.filter((s) => STEP_NAME_RE.test(s)).map((s) => ({ key: runKeys.ckptFile(unit, Number(s), MANIFEST_NAME), from: path.join(commits, 'ckpt', s, MANIFEST_NAME), dir: path.join(local, 'ckpt', s) })),
    { key: runKeys.outputsManifest(unit), from: path.join(commits, OUTPUTS_MANIFEST), dir: path.join(local, 'outputs') },
  ];
  for (const { key, from, dir } of found) {
    const bytes = await readFile(from).catch(() => null);
    if (!bytes || (await store.getBytes(key))?.equals(bytes)) continue;
    if (await allHome(bytes, dir)) await store.putBytes(key, bytes);
  }
}

/**
 * Whether every file a commit names is in `dir`, at its size where it gives one. A commit that
 * does not parse lands as it is, as the host has it: a restore reads it, and says why it skips it.
 */
async function allHome(commit: Buffer, dir: string): Promise<boolean> {
  let files: { path: string; size?: number }[];
  try {
    files = (JSON.parse(commit.toString('utf8')) as { files: { path: string; size?: number }[] }).files;
    if (!Array.isArray(files)) return true;
  } catch {
    return true;
  }
  for (const f of files) {
    const size = await stat(path.join(dir, String(f.path))).then((s) => (s.isFile() ? s.size : null), () => null);
    if (size === null || (typeof f.size === 'number' && size !== f.size)) return false;
  }
  return true;
}

/** Gives the host the committed checkpoints this machine holds for a unit that moves there, and only those. */
export async function pushCheckpoints(host: RemoteHost, store: Store, unit: string): Promise<void> {
  if (store.localDir === null) return; // the host reads them from the shared store
  const local = path.join(store.localDir, runKeys.ckptDir(unit));
  if (!existsSync(local)) return;
  const remote = `${host.layout.store}/${runKeys.ckptDir(unit)}`;
  await host.run(['mkdir', '-p', remote]);
  // Exactly home's steps: a step an attempt here left behind and the ledger counts lost (the host
  // went away before it came home) would otherwise be the newest, restored over home's progress.
  await runRsync({ src: local, dest: remote, target: host.target, direction: 'push', excludes: [], delete: true });
}
