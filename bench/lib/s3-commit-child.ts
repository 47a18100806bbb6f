// The committing process of bench/s3-commit.ts: one uploadStep of a checkpoint step to an S3
// server through S3Store, then its seconds, CPU seconds and peak RSS as JSON. Bundled and run in
// plain node (bundle-child.ts), as the runner that commits checkpoints ships.
// Arguments: <step dir> <run id> <endpoint> <bucket> <prefix>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CkptManifest } from '../../scripts/lib/ckpt/checkpoint.js';
import { uploadStep } from '../../scripts/lib/runner/store-checkpoints.js';
import { S3Store } from '../../scripts/lib/store/s3-store.js';
import { S3RVER_KEYS } from '../../test/helpers/s3rver.js';

const [stepDir, runId, endpoint, bucket, prefix] = process.argv.slice(2) as [string, string, string, string, string];
const manifest = JSON.parse(readFileSync(join(stepDir, 'manifest.json'), 'utf8')) as CkptManifest;
const store = new S3Store(`s3://${bucket}/${prefix}`, { endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_KEYS });
const t = performance.now();
await uploadStep(store, runId, stepDir, manifest);
const seconds = (performance.now() - t) / 1000;
store.close();
const u = process.resourceUsage();
process.stdout.write(JSON.stringify({ seconds, cpu: (u.userCPUTime + u.systemCPUTime) / 1e6, maxRssKiB: u.maxRSS }));
