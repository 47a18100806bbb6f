// S3 checkpoint-commit benchmark (not a test): npx tsx bench/s3-commit.ts
// Commits a 1 GiB step of 64 random files to s3rver on loopback with uploadStep + S3Store (in a
// child process bundled as the runner ships, lib/s3-commit-child.ts, for its peak RSS) and with `rclone copy`, side by side. The tree is generated
// once into bench/.tmp/ (git-ignored). Prints MET / MISSED beside each target; exits 1 when one is missed.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CKPT_FORMAT, hashFile, serializeManifest, verifyStep, type CkptManifest } from '../scripts/lib/ckpt/checkpoint.js';
import { run } from '../scripts/lib/proc.js';
import { S3RVER_KEYS, startS3rver } from '../test/helpers/s3rver.js';
import { requireTool } from './lib/baseline-tool.js';
import { bundleChild } from './lib/bundle-child.js';
import { sizeFromEnv } from './lib/measure.js';

const MIB = sizeFromEnv('BENCH_MIB', 1024);
const STEP_DIR = fileURLToPath(new URL(`./.tmp/s3-ckpt${MIB === 1024 ? '' : `-${MIB}`}/7/`, import.meta.url));
const FILES = 64;
const TOTAL = MIB * 1024 * 1024;
const RUN_ID = 'bench-s3-20260101T0000-00000000';
// Best of ROUNDS (default 3; each round moves 2 GiB); raise it on a busy machine.
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 3);

interface Result {
  seconds: number;
  /** user + system CPU seconds */
  cpu: number;
  maxRssKiB: number;
}

/** Sizes from 1 to ~48 MiB (a few big shards, many small tensors), adding up to exactly TOTAL. */
function sizes(): number[] {
  let seed = 11;
  const r = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const raw = Array.from({ length: FILES }, () => Math.exp(r() * Math.log(48)));
  const sum = raw.reduce((a, b) => a + b, 0);
  const out = raw.map((s) => Math.floor((s * TOTAL) / sum));
  out[0]! += TOTAL - out.reduce((a, b) => a + b, 0);
  return out;
}

/** A committed step directory (blobs + manifest.json, as saveCheckpoint writes it), made once. */
async function ensureStep(): Promise<CkptManifest> {
  const manifestPath = join(STEP_DIR, 'manifest.json');
  if (existsSync(manifestPath) && (await verifyStep(STEP_DIR)).ok) return JSON.parse(readFileSync(manifestPath, 'utf8'));
  rmSync(STEP_DIR, { recursive: true, force: true });
  mkdirSync(join(STEP_DIR, 'shards'), { recursive: true });
  const buf = Buffer.alloc(4 << 20);
  const files: CkptManifest['files'] = [];
  for (const [i, size] of sizes().entries()) {
    const path = `shards/model-${String(i).padStart(2, '0')}.bin`;
    const fd = openSync(join(STEP_DIR, path), 'w');
    for (let left = size; left > 0; left -= buf.length) writeSync(fd, randomFillSync(buf), 0, Math.min(left, buf.length));
    closeSync(fd);
    files.push({ path, ...(await hashFile(join(STEP_DIR, path))) });
  }
  const manifest: CkptManifest = { format: CKPT_FORMAT, step: 7, run_id: RUN_ID, attempt: 0, created_at: new Date().toISOString(), files };
  writeFileSync(manifestPath, serializeManifest(manifest));
  return manifest;
}

async function main() {
  const rclone = requireTool('rclone'); // first: the bench fails, saying why, when it cannot be had
  process.stdout.write(`preparing ${STEP_DIR} ... `);
  const t0 = performance.now();
  const manifest = await ensureStep();
  const bytes = manifest.files.reduce((a, f) => a + f.size, 0);
  console.log(`${manifest.files.length} files, ${(bytes / 2 ** 30).toFixed(2)} GiB (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  await verifyStep(STEP_DIR); // also warms the page cache for both contenders

  const server = await startS3rver('bench');
  const rcloneEnv = {
    ...process.env,
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: server.endpoint,
    RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: S3RVER_KEYS.accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: S3RVER_KEYS.secretAccessKey,
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    AWS_CA_BUNDLE: undefined, // plain http here; rclone 1.60 fails on any custom bundle ("unsupported transport")
  };
  const childScript = await bundleChild('s3-commit-child', fileURLToPath(new URL('./.tmp/s3-commit-child.mjs', import.meta.url)));
  const commitOurs = async (prefix: string): Promise<Result> => {
    const child = await run([process.execPath, childScript, STEP_DIR, RUN_ID, server.endpoint, server.bucket, prefix]);
    return JSON.parse(child.stdout.toString()) as Result;
  };
  const commitRclone = async (prefix: string): Promise<Result> => {
    // Same shape as ours: 4 files at a time, 8 MiB parts, 4 parts of a file at a time.
    const dest = `bench:${server.bucket}/${prefix}/runs/${RUN_ID}/ckpt/7`;
    const flags = ['--transfers', '4', '--s3-chunk-size', '8M', '--s3-upload-cutoff', '8M', '--s3-upload-concurrency', '4', '--s3-no-check-bucket'];
    const r = await run(['/usr/bin/time', '-f', '%e %U %S %M', 'rclone', 'copy', STEP_DIR, dest, ...flags], { env: rcloneEnv });
    const [e, u, sys, rss] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    return { seconds: e!, cpu: u! + sys!, maxRssKiB: rss! };
  };
  const best: Record<'ours' | 'rclone', Result | null> = { ours: null, rclone: null };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate who goes first; drop each copy afterwards so s3rver's disk use stays flat.
      const order = (round % 2 ? ['rclone', 'ours'] : ['ours', 'rclone']) as ('ours' | 'rclone')[];
      for (const who of order) {
        const prefix = `${who}-${round}`;
        const got = await (who === 'ours' ? commitOurs : commitRclone)(prefix);
        rmSync(join(server.dir, server.bucket, prefix), { recursive: true, force: true });
        if (!best[who] || got.seconds < best[who].seconds) best[who] = got;
      }
    }
  } finally {
    await server.stop();
  }

  const mb = bytes / 1e6;
  const rssMb = (r: Result) => ((r.maxRssKiB * 1024) / 1e6).toFixed(0);
  const line = (r: Result) => `${(mb / r.seconds).toFixed(1)} MB/s (${r.seconds.toFixed(1)} s, ${r.cpu.toFixed(1)} s CPU)`;
  const ours = best.ours!;
  const theirs = best.rclone!;
  const ratio = theirs.seconds / ours.seconds;
  const rows: [string, string, string][] = [
    ['switchyard uploadStep + S3Store', line(ours), `peak RSS ${rssMb(ours)} MB`],
    [`rclone copy (${rclone})`, line(theirs), `peak RSS ${rssMb(theirs)} MB`],
    ['ours / rclone', `${ratio.toFixed(2)}x`, `target >= 1.2x ${ratio >= 1.2 ? 'MET' : 'MISSED'}`],
    ['peak RSS of our commit process', `${rssMb(ours)} MB`, `target <= 200 MB ${Number(rssMb(ours)) <= 200 ? 'MET' : 'MISSED'}`],
  ];
  if (rows.some((r) => r[2].includes('MISSED'))) process.exitCode = 1;
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${availableParallelism()} cores, node ${process.version}, s3rver on loopback, best of ${ROUNDS} interleaved; MB = 10^6 bytes`);
  console.log('ours: the uploadStep call in a bundled child process (its start excluded); rclone: the whole process\n');
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
}

await main();
