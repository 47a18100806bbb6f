// An attempt's logs, metrics, events and status, copied to `runs/<unit>/attempts/<n>/` in the
// store, and beside them `manifest.json`: each copied file's size and SHA-256, written after the
// files on every copy (the runner copies after each checkpoint and at the end). `make pull`
// checks what it brings home against it.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { runKeys } from '../store/run-keys.js';
import { ATTEMPT_FILES } from './attempt-spec.js';
import { settleAll } from '../settle-all.js';
import type { Store, StoredObject } from '../store/store.js';

export interface AttemptFilesManifest {
  files: ({ path: string } & StoredObject)[];
}

export function parseAttemptManifest(bytes: Buffer | null): Map<string, StoredObject> | null {
  if (!bytes) return null;
  const m = JSON.parse(bytes.toString('utf8')) as AttemptFilesManifest;
  return new Map(m.files.map((f) => [f.path, { size: f.size, sha256: f.sha256 }]));
}

export class AttemptFilesMirror {
  private readonly stored = new Map<string, StoredObject>();

  constructor(
    private readonly store: Store,
    private readonly unit: string,
    private readonly attempt: number | 'predict',
    /** the attempt folder on this worker */
    private readonly dir: string,
  ) {}

  /** Starts from the manifest already in the store (salvaging an attempt whose runner died). */
  async load(): Promise<this> {
    const known = parseAttemptManifest(await this.store.getBytes(runKeys.attemptManifest(this.unit, this.attempt)));
    for (const [name, obj] of known ?? []) this.stored.set(name, obj);
    return this;
  }

  /**
   * Copies the named files that exist, then the manifest of everything copied so far.
   * `changedOnly`: skip files whose size is what the manifest records (logs only ever grow).
   */
  async copy(names: readonly string[], opts: { changedOnly?: boolean } = {}): Promise<void> {
    let copied = 0;
    // The files are independent of each other (side by side, the copies' fsyncs overlap); the
    // manifest waits for all of them.
    await settleAll(
      names.map(async (name) => {
        const file = path.join(this.dir, name);
        const size = await stat(file).then((s) => s.size, () => null);
        if (size === null || (opts.changedOnly && this.stored.get(name)?.size === size)) return;
        this.stored.set(name, await this.store.put(runKeys.attemptFile(this.unit, this.attempt, name), file));
        copied++;
      }),
    );
    if (copied) await writeManifest(this.store, this.unit, this.attempt, this.stored);
  }
}

async function writeManifest(store: Store, unit: string, attempt: number | 'predict', stored: Map<string, StoredObject>): Promise<void> {
  const files = [...stored].map(([p, o]) => ({ path: p, ...o })).sort((a, b) => (a.path < b.path ? -1 : 1)); // not localeCompare: its collator costs 13 ms at start
  await store.putBytes(runKeys.attemptManifest(unit, attempt), JSON.stringify({ files } satisfies AttemptFilesManifest, null, 2) + '\n');
}

/**
 * For an attempt whose runner is gone (its unit claimed by the next attempt): a runner killed
 * between copying a file and writing the manifest after it leaves the manifest behind the
 * file, so each attempt file is recorded as the store holds it now.
 */
export async function sealAttemptFiles(store: Store, unit: string, attempt: number): Promise<void> {
  const recorded = parseAttemptManifest(await store.getBytes(runKeys.attemptManifest(unit, attempt))) ?? new Map<string, StoredObject>();
  let changed = false;
  for (const name of ATTEMPT_FILES) {
    const now = await store.stat(runKeys.attemptFile(unit, attempt, name));
    if (!now || recorded.get(name)?.sha256 === now.sha256) continue;
    recorded.set(name, now);
    changed = true;
  }
  if (changed) await writeManifest(store, unit, attempt, recorded);
}
