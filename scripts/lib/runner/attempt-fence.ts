// One runner per unit writes to a store. A host given up as lost may still be running its
// runner, and with a shared store (S3) that runner keeps writing where the unit's next attempt,
// started elsewhere, now writes too: its prunes would delete steps the ledger still counts on,
// never recorded. So each runner claims the unit when it starts (`attempts/current.json`), and
// one that finds a newer attempt there stops uploading, pruning and saving outputs. The
// orchestrator claims it too, for the next attempt, as soon as it gives an attempt up as lost.
// A scheduler's rerun of an attempt (Batch, after a VM failure) claims it with its rerun number:
// the VM given up may still be running the attempt, and both would write the same files.
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';

/** Makes `attempt` (its `rerun`-th rerun by a scheduler) the unit's current one: runners of earlier ones stop writing to it. */
export async function claimUnit(store: Store, unit: string, attempt: number, rerun = 0): Promise<void> {
  await store.putBytes(runKeys.currentAttempt(unit), JSON.stringify(rerun ? { attempt, rerun } : { attempt }) + '\n');
}

export class AttemptFence {
  /** what took the unit over, once seen: `attempt 4`, or `rerun 2 of attempt 3` */
  supersededBy: string | null = null;
  /** by a rerun of this same attempt (whose files are this one's too) */
  byRerun = false;

  constructor(
    private readonly store: Store,
    private readonly unit: string,
    private readonly attempt: number | 'predict',
    /** a scheduler's rerun of the attempt (Batch after a VM failure): a VM given up may still run the one before */
    private readonly rerun = 0,
  ) {}

  /**
   * Records this attempt as the unit's current one (predictions do not take a unit over), unless
   * a newer attempt or rerun holds it already: an older one that starts late (a SLURM job
   * requeued after the orchestrator moved on, a task rerun) is superseded, and false says so.
   */
  async claim(): Promise<boolean> {
    if (this.attempt === 'predict') return true;
    if (!(await this.stillCurrent())) return false;
    await claimUnit(this.store, this.unit, this.attempt, this.rerun);
    return true;
  }

  /** False once a newer attempt, or a newer rerun of this one, has claimed the unit. */
  async stillCurrent(): Promise<boolean> {
    if (this.supersededBy !== null) return false;
    if (this.attempt === 'predict') return true;
    const bytes = await this.store.getBytes(runKeys.currentAttempt(this.unit));
    const current = bytes ? (JSON.parse(bytes.toString('utf8')) as { attempt?: unknown; rerun?: unknown }) : {};
    if (typeof current.attempt !== 'number') return true;
    const rerun = typeof current.rerun === 'number' ? current.rerun : 0;
    if (current.attempt > this.attempt) this.supersededBy = `attempt ${current.attempt}`;
    else if (current.attempt === this.attempt && rerun > this.rerun) {
      this.supersededBy = `rerun ${rerun} of attempt ${current.attempt}`;
      this.byRerun = true;
    }
    return this.supersededBy === null;
  }
}
