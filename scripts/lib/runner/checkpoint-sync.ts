// Watches the attempt's checkpoint folder and uploads each newly committed step while training
// goes on. One upload at a time: when the store is slower than the trainer, intermediate steps
// are skipped and the newest committed one goes next, so the store is never more than one step
// behind and training is never blocked.
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { MANIFEST_NAME, ManifestError, parseManifest, sameFiles, verifyStep, type CkptManifest } from '../ckpt/checkpoint.js';
import type { Store } from '../store/store.js';
import type { RunnerEvent } from './attempt-spec.js';
import { deleteStoredStep, pruneStoredSteps, uploadStep } from './store-checkpoints.js';

export class CheckpointSync {
  lastSynced: number | null = null;
  /** lastSynced's manifest as the store has it: a local save of the step with other files is a re-save */
  private syncedManifest: CkptManifest | null = null;
  private running: Promise<void> | null = null;
  private started = false;
  private readonly reported = new Set<number>();

  constructor(
    private readonly store: Store,
    private readonly runId: string,
    private readonly ckptDir: string,
    private readonly keep: number,
    private readonly emit: (e: RunnerEvent) => void,
    /** runs after each committed upload, inside the same pass (the runner mirrors logs here) */
    private readonly afterCommit: () => Promise<void> = async () => {},
    /** asked before each upload and each prune: false once another attempt has taken the unit over */
    private readonly mayWrite: () => Promise<boolean> = async () => true,
  ) {}

  /**
   * Starts after the step restored (null: none), so it is not uploaded again; a newer stored step
   * the restore skipped as broken is overwritten if the experiment saves that step again. Until
   * this runs, nothing is uploaded: the local steps may be older than the store's.
   */
  init(restored: number | null): void {
    this.lastSynced = restored;
    this.syncedManifest = restored === null ? null : this.localManifest(restored);
    this.started = true;
  }

  /** Runs one sync pass unless one is in flight; resolves when that pass ends. */
  tick(): Promise<void> {
    if (!this.started) return Promise.resolve();
    this.running ??= this.syncNewest().finally(() => (this.running = null));
    return this.running;
  }

  /**
   * Waits for the pass in flight, then runs a last one (after the experiment exited). The last
   * pass runs even when the one in flight failed (a store's 503): it uploads the step saved at
   * exit, and retries that pass's step when it was the newest. The earlier error counts only
   * if the newest committed step is still not in the store after it.
   */
  async flush(): Promise<void> {
    const earlier = await (this.running ?? Promise.resolve()).then(
      () => null,
      (err: unknown) => err,
    );
    await this.tick();
    if (earlier !== null && (await this.newestCommittedLocal()) !== null) throw earlier;
  }

  private async newestCommittedLocal(): Promise<number | null> {
    const names = await readdir(this.ckptDir).catch(() => [] as string[]);
    const steps = names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((s) => (s > (this.lastSynced ?? -1) && existsSync(path.join(this.ckptDir, String(s), 'manifest.json'))) || this.savedAgain(s))
      .sort((a, b) => b - a);
    return steps[0] ?? null;
  }

  /**
   * Whether the experiment committed the step the store has last from us again, with other
   * files (a final save at the step of the last periodic one, the model changed since): that
   * save is the newest. The same files saved again are not uploaded again.
   */
  private savedAgain(step: number): boolean {
    if (step !== this.lastSynced || this.syncedManifest === null) return false;
    const local = this.localManifest(step);
    return local !== null && !sameFiles(local, this.syncedManifest);
  }

  private localManifest(step: number): CkptManifest | null {
    const file = path.join(this.ckptDir, String(step), MANIFEST_NAME);
    try {
      return parseManifest(readFileSync(file, 'utf8'), file);
    } catch {
      return null; // gone, or torn: not a save to upload
    }
  }

  private async syncNewest(): Promise<void> {
    const step = await this.newestCommittedLocal();
    if (step === null || !(await this.mayWrite())) return;
    const uploaded = await this.uploadSnapshot(step, step === this.lastSynced);
    if (!uploaded) return;
    this.lastSynced = step;
    this.syncedManifest = uploaded.manifest;
    // Committed in the store from here on, even if this event cannot be written.
    this.emit({ type: 'ckpt.committed', step, manifest: uploaded.key, manifest_sha256: uploaded.sha256 });
    if (!(await this.mayWrite())) return;
    // Each prune is announced before its step goes: if the announcement cannot be written (a
    // full disk), the step stays and the ledger never names a checkpoint the store lacks. The
    // attempt's files reach the store before the first deletion, announcements and all.
    let copied = false;
    const copy = async () => {
      copied = true;
      await this.afterCommit();
    };
    await pruneStoredSteps(this.store, this.runId, this.keep, (pruned) => this.emit({ type: 'ckpt.pruned', step: pruned }), copy);
    if (!copied) await this.afterCommit();
  }

  /**
   * Uploads the step from a snapshot of its files (hard links, in a folder of the runner's own
   * beside the checkpoint folder): the experiment's own prune (SWITCHYARD_CKPT_KEEP) or a re-save
   * of the step mid-upload cannot take the files away or change them, however slow the store.
   * Null when the step is gone or does not verify, said once per step. `replacing`: the store
   * holds an earlier save of the step, un-committed first so that its manifest never names the
   * new blobs half uploaded (a restore meanwhile takes the step before).
   */
  private async uploadSnapshot(step: number, replacing: boolean): Promise<{ key: string; sha256: string; manifest: CkptManifest } | null> {
    const dir = path.join(this.ckptDir, String(step));
    const snapshots = path.join(path.dirname(this.ckptDir), 'ckpt-upload');
    const snap = path.join(snapshots, String(step));
    try {
      if (!(await snapshotStep(dir, snap))) {
        this.noticeOnce(step, `checkpoint step ${step} not uploaded: removed or saved again before the runner could take a copy (the experiment keeps SWITCHYARD_CKPT_KEEP steps)`);
        return null;
      }
      const checked = await verifyStep(snap);
      if (!checked.ok) {
        this.noticeOnce(step, `checkpoint step ${step} not uploaded: ${checked.reason}`);
        return null;
      }
      if (replacing) await deleteStoredStep(this.store, this.runId, step);
      const uploaded = await uploadStep(this.store, this.runId, snap, checked.manifest).catch(async (err: unknown) => {
        await deleteStoredStep(this.store, this.runId, step).catch(() => {});
        throw err;
      });
      return { ...uploaded, manifest: checked.manifest };
    } finally {
      await rm(snapshots, { recursive: true, force: true });
    }
  }

  private noticeOnce(step: number, line: string): void {
    if (this.reported.has(step)) return;
    this.reported.add(step);
    this.emit({ type: 'notice', line });
  }
}

/**
 * Hard-links a committed step's manifest and the files it lists into `snap` (a copy where links
 * are refused). False when the step is gone (pruned, or being saved again: its manifest goes
 * first); a step that only lacks a file is left to verifyStep to name.
 */
async function snapshotStep(dir: string, snap: string): Promise<boolean> {
  await rm(snap, { recursive: true, force: true });
  await mkdir(snap, { recursive: true });
  const place = async (rel: string) => {
    await mkdir(path.dirname(path.join(snap, rel)), { recursive: true });
    await link(path.join(dir, rel), path.join(snap, rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EXDEV' || err.code === 'EPERM' || err.code === 'ENOTSUP') return copyFile(path.join(dir, rel), path.join(snap, rel));
      throw err;
    });
  };
  try {
    await place(MANIFEST_NAME);
    const manifest = parseManifest(await readFile(path.join(snap, MANIFEST_NAME), 'utf8'), path.join(dir, MANIFEST_NAME));
    for (const f of manifest.files) await place(f.path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return existsSync(path.join(dir, MANIFEST_NAME));
    if (err instanceof ManifestError) return true; // verifyStep says what is wrong with it
    throw err;
  }
}
