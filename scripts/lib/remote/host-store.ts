// A host and the project's store. A store the host can reach itself (S3) is written by its
// runners directly; a store that is a folder on this machine is not, so the runner on the host
// writes the host's own store (<root>/store) and this machine copies runs home from it.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST_NAME } from '../ckpt/manifest.js';
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
 */
export async function pullUnit(host: RemoteHost, store: Store, unit: string): Promise<void> {
  if (store.localDir === null) return; // the runner wrote to the shared store
  const local = path.join(store.localDir, runKeys.dir(unit));
  mkdirSync(path.dirname(local), { recursive: true }); // rsync makes only the last folder
  // Blobs before manifests, as the checkpoint protocol orders them: a pull cut off halfway (its
  // host going away) never leaves a step whose manifest is home but whose blobs are not, nor
  // the outputs manifest (rsync copies a folder's files before its subfolders) before the outputs.
  const pull = { src: `${host.layout.store}/${runKeys.dir(unit)}`, dest: local, target: host.target, direction: 'pull' } as const;
  await runRsync({ ...pull, excludes: [MANIFEST_NAME, path.posix.basename(runKeys.outputsManifest(unit))] });
  await runRsync({ ...pull, excludes: [] });
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
