// Watches the attempt's checkpoint folder and uploads each newly committed step while training
// goes on. One upload at a time: when the store is slower than the trainer, intermediate steps
// are skipped and the newest committed one goes next, so the store is never more than one step
// behind and training is never blocked.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { verifyStep } from '../ckpt/checkpoint.js';
import type { Store } from '../store/store.js';
import type { RunnerEvent } from './attempt-spec.js';
import { deleteStoredStep, pruneStoredSteps, storedSteps, uploadStep } from './store-checkpoints.js';

export class CheckpointSync {
  lastSynced: number | null = null;
  private running: Promise<void> | null = null;
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

  /** Starts from what the store already holds, so restored steps are not uploaded again. */
  async init(): Promise<void> {
    const committed = (await storedSteps(this.store, this.runId)).filter((s) => s.hasManifest);
    this.lastSynced = committed.at(-1)?.step ?? null;
  }

  /** Runs one sync pass unless one is in flight; resolves when that pass ends. */
  tick(): Promise<void> {
    this.running ??= this.syncNewest().finally(() => (this.running = null));
    return this.running;
  }

  /** Waits for the pass in flight, then runs a last one (after the experiment exited). */
  async flush(): Promise<void> {
    await this.running;
    await this.tick();
  }

  private async newestCommittedLocal(): Promise<number | null> {
    const names = await readdir(this.ckptDir).catch(() => [] as string[]);
    const steps = names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((s) => s > (this.lastSynced ?? -1) && existsSync(path.join(this.ckptDir, String(s), 'manifest.json')))
      .sort((a, b) => b - a);
    return steps[0] ?? null;
  }

  private async syncNewest(): Promise<void> {
    const step = await this.newestCommittedLocal();
    if (step === null || !(await this.mayWrite())) return;
    const dir = path.join(this.ckptDir, String(step));
    const checked = await verifyStep(dir);
    if (!checked.ok) {
      // Pruned by the trainer's own retention meanwhile, or genuinely broken: say so once.
      if (existsSync(dir) && !this.reported.has(step)) {
        this.reported.add(step);
        this.emit({ type: 'notice', line: `checkpoint step ${step} not uploaded: ${checked.reason}` });
      }
      return;
    }
    const uploaded = await uploadStep(this.store, this.runId, dir, checked.manifest).catch(async (err: unknown) => {
      await deleteStoredStep(this.store, this.runId, step);
      if (!existsSync(dir)) return null; // pruned locally mid-upload; a newer step will follow
      throw err;
    });
    if (!uploaded) return;
    this.lastSynced = step;
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
}
