// Shard-merge benchmark (not a test): npx tsx bench/merge.ts
// 32 sorted shards totalling >= 256 MiB: our streaming mergeShards (concat) vs `jq -c -s add` over
// the same records as JSON arrays. Times both as whole processes (best of BENCH_ROUNDS, default 1)
// and reads our peak RSS (maxRSS of the child, bundled as the verbs are: lib/bundle-child.ts).
// Targets: >= 150 MB/s over the whole process, >= 3x faster than jq, <= 128 MiB RSS.
// Inputs are generated once into bench/.tmp/merge/ (git-ignored). Prints MISSED and exits 1 when a target is missed.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool } from './lib/baseline-tool.js';
import { bundleChild } from './lib/bundle-child.js';
import { sizeFromEnv } from './lib/measure.js';

const DIR = fileURLToPath(new URL('./.tmp/merge/', import.meta.url));
const SHARDS = 32;
const PER_SHARD = sizeFromEnv('BENCH_PER_SHARD', 34_000); // ~250 B a record: 32 x 34k x 250 B > 256 MiB
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 1);
const shardFile = (i: number) => join(DIR, `shard-${i}-of-${SHARDS}.jsonl`);
const jqFile = (i: number) => join(DIR, `jq-${i}.json`);

function generate(): void {
  const marker = join(DIR, '.complete');
  const tag = `${SHARDS} ${PER_SHARD} v1\n`;
  if (existsSync(marker) && readFileSync(marker, 'utf8') === tag) return;
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  process.stdout.write('generating inputs (once) ...\n');
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < SHARDS; i++) {
    const lo = i * PER_SHARD;
    const fd = openSync(shardFile(i), 'w');
    const jq = openSync(jqFile(i), 'w');
    writeSync(fd, JSON.stringify({ format: 'switchyard-shard/1', shard_index: i, shard_count: SHARDS, pins_digest: 'bench', key_range: [lo, lo + PER_SHARD], records: PER_SHARD }) + '\n');
    writeSync(jq, '[');
    let batch: string[] = [];
    for (let j = 0; j < PER_SHARD; j++) {
      let text = '';
      for (let c = 0; c < 160; c++) text += alphabet[Math.floor(rand() * alphabet.length)];
      const rec = JSON.stringify({ key: lo + j, score: Math.round(rand() * 1e6) / 1e6, params: { k: j % 17, metric: 'euclidean', lr: 0.001 * (j % 9) }, text });
      batch.push(rec);
      if (batch.length === 4096 || j === PER_SHARD - 1) {
        writeSync(fd, batch.join('\n') + '\n');
        writeSync(jq, (j + 1 > batch.length ? ',' : '') + batch.join(','));
        batch = [];
      }
    }
    writeSync(jq, ']\n');
    closeSync(fd);
    closeSync(jq);
  }
  writeFileSync(marker, tag);
}

function timed(cmd: string, args: string[], stdoutFile?: string): Promise<{ ms: number; stdout: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const out = stdoutFile ? openSync(stdoutFile, 'w') : 'pipe';
    const child = spawn(cmd, args, { stdio: ['ignore', out, 'inherit'] });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (typeof out === 'number') closeSync(out);
      resolve({ ms: performance.now() - t0, stdout, code });
    });
  });
}

/**
 * Reads files once so both contenders read them from the page cache, as a merge of shards just
 * pulled does. Without it, the benches before this one (1 GiB to S3, 500 MB hashed) have pushed
 * the inputs out, and the first contender pays for the disk: 116 MB/s cold, ~200 warm.
 */
function warm(files: string[]): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const f of files) {
    const fd = openSync(f, 'r');
    while (readSync(fd, buf, 0, buf.length, null) > 0);
    closeSync(fd);
  }
}

generate();
const shards = Array.from({ length: SHARDS }, (_, i) => shardFile(i));
const jqInputs = Array.from({ length: SHARDS }, (_, i) => jqFile(i));
const totalBytes = shards.reduce((a, f) => a + statSync(f).size, 0);
process.stdout.write(`inputs: ${SHARDS} shards, ${(totalBytes / 2 ** 20).toFixed(0)} MiB, ${SHARDS * PER_SHARD} records\n`);

const childScript = await bundleChild('merge-child', join(DIR, '..', 'merge-child.mjs'));
let ours = { ms: Infinity, inner: Infinity, rss: 0 };
warm(shards);
for (let r = 0; r < ROUNDS; r++) {
  const res = await timed(process.execPath, [childScript, join(DIR, 'merged.jsonl'), ...shards]);
  if (res.code !== 0) throw new Error(`merge child exited ${res.code}`);
  const child = JSON.parse(res.stdout) as { ms: number; maxRssKiB: number; records: number };
  if (child.records !== SHARDS * PER_SHARD) throw new Error(`merged ${child.records} records`);
  if (res.ms < ours.ms) ours = { ms: res.ms, inner: child.ms, rss: child.maxRssKiB * 1024 };
}
const rssMiB = ours.rss / 2 ** 20;
const mbs = (ms: number) => totalBytes / 1e3 / ms;
process.stdout.write(
  `mergeShards (concat): ${(ours.ms / 1000).toFixed(2)} s process wall, ${mbs(ours.ms).toFixed(0)} MB/s (${(ours.inner / 1000).toFixed(2)} s, ${mbs(ours.inner).toFixed(0)} MB/s in the merge), peak RSS ${rssMiB.toFixed(0)} MiB\n`,
);

let jqMs = Infinity;
requireTool('jq'); // fails the bench, saying why, when it cannot be had
warm(jqInputs);
for (let r = 0; r < ROUNDS; r++) {
  const res = await timed('jq', ['-c', '-s', 'add', ...jqInputs], join(DIR, 'jq-out.json'));
  if (res.code !== 0) throw new Error(`jq exited ${res.code}`);
  jqMs = Math.min(jqMs, res.ms);
}
process.stdout.write(`jq -c -s add:         ${(jqMs / 1000).toFixed(2)} s process wall\n`);
rmSync(join(DIR, 'jq-out.json'), { force: true });
rmSync(join(DIR, 'merged.jsonl'), { force: true });

const ratio = jqMs / ours.ms;
const rateOk = mbs(ours.ms) >= 150;
const speedOk = ratio >= 3;
const rssOk = rssMiB <= 128;
process.stdout.write(`throughput: ${mbs(ours.ms).toFixed(0)} MB/s (target >= 150 MB/s): ${rateOk ? 'MET' : 'MISSED'}\n`);
process.stdout.write(`speed: ${ratio.toFixed(1)}x jq (target >= 3x): ${speedOk ? 'MET' : 'MISSED'}\n`);
process.stdout.write(`peak RSS: ${rssMiB.toFixed(0)} MiB (target <= 128 MiB): ${rssOk ? 'MET' : 'MISSED'}\n`);
process.exitCode = rateOk && speedOk && rssOk ? 0 : 1;
