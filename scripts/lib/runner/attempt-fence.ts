// One runner per unit writes to a store. A host given up as lost may still be running its
// runner, and with a shared store (S3) that runner keeps writing where the unit's next attempt,
// started elsewhere, now writes too: its prunes would delete steps the ledger still counts on,
// never recorded. So each runner claims the unit when it starts (`attempts/current.json`), and
// one that finds a newer attempt there stops uploading, pruning and saving outputs. The
// orchestrator claims it too, for the next attempt, as soon as it gives an attempt up as lost.
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';

/** Makes `attempt` the unit's current one: runners of earlier attempts stop writing to it. */
export async function claimUnit(store: Store, unit: string, attempt: number): Promise<void> {
  await store.putBytes(runKeys.currentAttempt(unit), JSON.stringify({ attempt }) + '\n');
}

export class AttemptFence {
  /** the attempt that took the unit over, once seen */
  supersededBy: number | null = null;

  constructor(
    private readonly store: Store,
    private readonly unit: string,
    private readonly attempt: number | 'predict',
  ) {}

  /** Records this attempt as the unit's current one (predictions do not take a unit over). */
  async claim(): Promise<void> {
    if (this.attempt !== 'predict') await claimUnit(this.store, this.unit, this.attempt);
  }

  /** False once a newer attempt has claimed the unit. */
  async stillCurrent(): Promise<boolean> {
    if (this.supersededBy !== null) return false;
    if (this.attempt === 'predict') return true;
    const bytes = await this.store.getBytes(runKeys.currentAttempt(this.unit));
    const current = bytes ? (JSON.parse(bytes.toString('utf8')) as { attempt?: unknown }).attempt : null;
    if (typeof current === 'number' && current > this.attempt) this.supersededBy = current;
    return this.supersededBy === null;
  }
}
