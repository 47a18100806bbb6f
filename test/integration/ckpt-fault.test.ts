// Fault injection: SIGKILL the runner (and with it the experiment) at random moments while
// checkpoints are being written and uploaded. Afterwards every stored step that has a
// manifest is complete, and a restore always yields a complete step that never goes back.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../scripts/lib/ckpt/checkpoint.js';
import { restoreLatest, storedSteps } from '../../scripts/lib/runner/store-checkpoints.js';
import type { Store } from '../../scripts/lib/store/store.js';
import { removeRunnerBundles, spawnRunner, testAttemptSpec } from '../helpers/runner-process.js';
import { waitFor } from '../helpers/sandbox.js';
import { S3RVER_KEYS, startS3rver, type S3rver } from '../helpers/s3rver.js';

const RUN = 'fault-default-20260101T0000-0badc0de';
const TRIALS = 50;

// Saves a step of four 1-2 MB blobs as fast as it can, resuming from the restored step.
const SAVER = `
import os, switchyard_ckpt as ck
latest = ck.latest()
step = latest[0] if latest else 0
while True:
    step += 1
    ck.save(step, {f"w{i}.bin": os.urandom(1_000_000 + 250_000 * i) for i in range(4)})
    print("saved", step, flush=True)
`;

/** Every step that has a manifest in the store has every blob, intact. */
async function assertCommittedStepsComplete(store: Store): Promise<void> {
  for (const { step, hasManifest } of await storedSteps(store, RUN)) {
    if (!hasManifest) continue;
    const text = await store.getBytes(`runs/${RUN}/ckpt/${step}/manifest.json`);
    const manifest = parseManifest(text!.toString('utf8'), `step ${step}`);
    for (const f of manifest.files) {
      expect(await store.stat(`runs/${RUN}/ckpt/${step}/${f.path}`), `step ${step} ${f.path}`).toEqual({ size: f.size, sha256: f.sha256 });
    }
  }
}

describe.each([
  ['file', 25],
  ['s3', TRIALS],
] as const)('checkpoint upload to a %s store under SIGKILL', (kind, trials) => {
  let dir: string;
  let storeModule: string;
  let store: Store;
  let s3: S3rver | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ckpt-fault-'));
    mkdirSync(path.join(dir, 'exp'));
    writeFileSync(path.join(dir, 'exp', 'saver.py'), SAVER);
    storeModule = path.join(dir, 'store.mts');
    // The runner in the child opens the same store the test inspects.
    let open: string;
    if (kind === 'file') {
      open = `const { FileStore } = await import(${JSON.stringify(path.resolve('scripts/lib/store/file-store.ts'))});
        return new FileStore('file://store', ${JSON.stringify(path.join(dir, 'store'))});`;
    } else {
      s3 = await startS3rver();
      open = `const { S3Store } = await import(${JSON.stringify(path.resolve('scripts/lib/store/s3-store.ts'))});
        return new S3Store(${JSON.stringify(`s3://${s3.bucket}/fault`)}, { endpoint: ${JSON.stringify(s3.endpoint)}, region: 'us-east-1',
          forcePathStyle: true, credentials: ${JSON.stringify(S3RVER_KEYS)} });`;
    }
    writeFileSync(storeModule, `export async function openTestStore() { ${open} }`);
    store = await (await import(storeModule)).openTestStore();
  });
  afterAll(async () => {
    removeRunnerBundles();
    rmSync(dir, { recursive: true, force: true });
    await s3?.stop();
  });

  it(`keeps the store consistent over ${trials} random kills`, async () => {
    let restoredBefore = 0;
    for (let trial = 1; trial <= trials; trial++) {
      const spec = testAttemptSpec({ run_id: RUN, attempt: trial, command: ['python3', 'saver.py'], store: store.url, seed: 0, ckpt_every_sec: 0, grace_sec: 5 });
      const r = await spawnRunner({ dir, spec, storeModule });
      await waitFor(() => r.output().includes('saved'), 30_000, `trial ${trial} to save`);
      await new Promise((res) => setTimeout(res, 50 + Math.random() * 600));
      r.child.kill('SIGKILL');
      await r.exited;

      await assertCommittedStepsComplete(store);
      const lines: string[] = [];
      const restored = await restoreLatest(store, RUN, path.join(dir, 'restore'), (l) => lines.push(l));
      const anyCommitted = (await storedSteps(store, RUN)).some((s) => s.hasManifest);
      expect(restored === null, `trial ${trial}: ${lines.join('; ')}`).toBe(!anyCommitted);
      expect(restored ?? 0).toBeGreaterThanOrEqual(restoredBefore);
      restoredBefore = restored ?? 0;
    }
  }, 600_000);
});
