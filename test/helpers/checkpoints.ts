// Checkpoint checks shared by the pure checkpoint tests and the ones that kill or fill a disk:
// a committed step read back intact, and a local step committed to a store.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type CommittedStep, hashFile, saveCheckpoint, verifyStep } from '../../scripts/lib/ckpt/checkpoint.js';
import { uploadStep } from '../../scripts/lib/runner/store-checkpoints.js';
import type { Store } from '../../scripts/lib/store/store.js';

/** Every file of a committed step re-hashed, and its contents equal to what that step saved. */
export async function expectIntact(found: CommittedStep, expected: (step: number) => Record<string, Buffer | string>): Promise<void> {
  expect((await verifyStep(found.dir)).ok).toBe(true);
  const want = expected(found.step);
  expect(found.manifest.files.map((f) => f.path)).toEqual(Object.keys(want).sort());
  for (const f of found.manifest.files) {
    const got = await readFile(join(found.dir, f.path));
    expect(got.equals(Buffer.from(want[f.path]!))).toBe(true);
    expect(await hashFile(join(found.dir, f.path))).toEqual({ size: f.size, sha256: f.sha256 });
  }
}

/** Saves step `step` (model.bin = `content`) under `localRoot` and uploads it to `store` as run `run`'s. */
export async function commitToStore(store: Store, run: string, localRoot: string, step: number, content: string) {
  const dir = await saveCheckpoint(localRoot, step, { 'model.bin': content, 'opt/state.json': `{"step":${step}}` }, { keep: 10 });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  return uploadStep(store, run, dir, manifest);
}
