// Data-pin benchmark (not a test): npx tsx bench/data-pin.ts
// 1. cold pinData over 500 MiB in 2,000 files vs openssl / sha256sum on two concurrent processes
// 2. warm re-pin of 10,000 small files with a warm stat cache
// Trees are generated once into bench/.tmp/ (git-ignored). Prints MISSED and exits 1 when a target is missed.
import { existsSync, lstatSync, mkdirSync, openSync, closeSync, readdirSync, writeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinData } from '../scripts/lib/pins/data-manifest.js';
import { run } from '../scripts/lib/proc.js';
import { sizeFromEnv } from './lib/measure.js';

const TMP = fileURLToPath(new URL('./.tmp/', import.meta.url));
const BIG = { dir: join(TMP, 'big'), files: 2000, bytes: sizeFromEnv('BENCH_MIB', 500) * 1024 * 1024 };
const SMALL = { dir: join(TMP, 'small'), files: sizeFromEnv('BENCH_FILES', 10_000) };
const CACHE = join(TMP, 'small.statcache');
// Best of ROUNDS (default 3), interleaved, for ours and each tool alike. Two rounds left the cold
// pin's ratio moving by ±8% from one run to the next on a shared 2-core VM, more than the margin
// it is judged by; each round costs about a second.
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 3);

/** A deterministic PRNG so the tree's size mix is the same on every machine. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Writes files (random bytes) unless a marker says this exact tree already exists. */
function ensureTree(dir: string, sizes: number[], perDir: number): boolean {
  const marker = join(dir, '.complete');
  const tag = `${sizes.length} ${sizes.reduce((a, b) => a + b, 0)}\n`;
  if (existsSync(marker) && readFileSync(marker, 'utf8') === tag) return false;
  rmSync(dir, { recursive: true, force: true });
  const buf = Buffer.alloc(4 << 20);
  sizes.forEach((size, i) => {
    const sub = join(dir, `d${String(Math.floor(i / perDir)).padStart(3, '0')}`);
    if (i % perDir === 0) mkdirSync(sub, { recursive: true });
    const fd = openSync(join(sub, `f${String(i).padStart(5, '0')}.bin`), 'w');
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      left -= n;
    }
    closeSync(fd);
  });
  writeFileSync(marker, tag);
  return true;
}

/** Log-uniform sizes from 1 KiB to ~8 MiB, scaled so they add up to exactly `total`. */
function bigSizes(): number[] {
  const r = rng(42);
  const raw = Array.from({ length: BIG.files }, () => Math.exp(Math.log(1024) + r() * Math.log(8192)));
  const sum = raw.reduce((a, b) => a + b, 0);
  const sizes = raw.map((s) => Math.max(1, Math.floor((s * BIG.bytes) / sum)));
  sizes[0]! += BIG.bytes - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

function smallSizes(): number[] {
  const r = rng(7);
  return Array.from({ length: SMALL.files }, () => Math.floor(r() * 8192));
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/** Splits files into `n` groups of near-equal bytes (largest first into the lightest group). */
function split(files: { path: string; size: number }[], n: number): string[][] {
  const groups = Array.from({ length: n }, () => ({ bytes: 0, paths: [] as string[] }));
  for (const f of [...files].sort((a, b) => b.size - a.size)) {
    const g = groups.reduce((a, b) => (b.bytes < a.bytes ? b : a));
    g.paths.push(f.path);
    g.bytes += f.size;
  }
  return groups.map((g) => g.paths);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every directory read and every file lstat-ed, as a warm pin must at least do. */
function bareWalk(dir: string): void {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, d.name);
    if (d.isDirectory()) bareWalk(abs);
    else lstatSync(abs, { bigint: true });
  }
}

/** Child mode: one warm pin in a fresh process (cold JIT, small heap), as a CLI call sees it. */
async function warmChild() {
  const t = performance.now();
  await pinData({ dir: SMALL.dir, cacheFile: CACHE, exclude: ['.complete'] });
  process.stdout.write(String((performance.now() - t) / 1000));
}

async function main() {
  const cores = availableParallelism();
  process.stdout.write(`preparing trees in ${TMP} ... `);
  const t0 = performance.now();
  const madeBig = ensureTree(BIG.dir, bigSizes(), 100);
  const madeSmall = ensureTree(SMALL.dir, smallSizes(), 100);
  console.log(madeBig || madeSmall ? `generated in ${((performance.now() - t0) / 1000).toFixed(1)} s` : 'cached');

  // Cold pin (no stat cache) vs openssl / sha256sum, two concurrent processes each.
  const pin = await pinData({ dir: BIG.dir, exclude: ['.complete'] });
  const files = pin.manifest.files.map((f) => ({ path: join(BIG.dir, f.path), size: f.size }));
  const halves = split(files, 2);
  const mb = pin.bytes / 1e6;
  // Interleaved rounds, so a burst of load elsewhere on the machine hits all contenders alike.
  const tool = (argv: string[]) => () => Promise.all(halves.map((h) => run([...argv, ...h])));
  let ours = Infinity;
  let openssl = Infinity;
  let sha256sum = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    ours = Math.min(ours, await time(() => pinData({ dir: BIG.dir, exclude: ['.complete'] })));
    openssl = Math.min(openssl, await time(tool(['openssl', 'dgst', '-sha256'])));
    sha256sum = Math.min(sha256sum, await time(tool(['sha256sum'])));
  }

  // Warm re-pin: prime the cache once files are past the 2 s "racy" window, then time it.
  if (madeSmall) await sleep(2100);
  await pinData({ dir: SMALL.dir, cacheFile: CACHE, exclude: ['.complete'] });
  const warmRuns: number[] = [];
  let warmPin;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    warmPin = await pinData({ dir: SMALL.dir, cacheFile: CACHE, exclude: ['.complete'] });
    warmRuns.push((performance.now() - t) / 1000);
  }
  // The floor under a warm re-pin: the same directory reads and one lstat a file, and nothing else.
  const floorRuns: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    bareWalk(SMALL.dir);
    floorRuns.push((performance.now() - t) / 1000);
  }
  const floor = [...floorRuns].sort((a, b) => a - b)[2]!;
  const warmSorted = [...warmRuns].sort((a, b) => a - b);
  const warmMedian = warmSorted[2]!;
  const fresh: number[] = [];
  for (let i = 0; i < 3; i++) {
    const child = await run([process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), '--warm-child']);
    fresh.push(Number(child.stdout.toString()));
  }
  fresh.sort((a, b) => a - b);

  const ratio = openssl / ours;
  const rows: [string, string, string][] = [
    [`cold pinData, ${pin.files} files, ${mb.toFixed(0)} MB`, `${(mb / ours).toFixed(0)} MB/s (${ours.toFixed(3)} s)`, ''],
    [`openssl dgst -sha256, 2 processes`, `${(mb / openssl).toFixed(0)} MB/s (${openssl.toFixed(3)} s)`, ''],
    [`sha256sum, 2 processes`, `${(mb / sha256sum).toFixed(0)} MB/s (${sha256sum.toFixed(3)} s)`, ''],
    ['ours / openssl', `${ratio.toFixed(2)}x`, `target >= 0.95x ${ratio >= 0.95 ? 'MET' : 'MISSED'}`],
    [
      `warm re-pin, ${warmPin!.files} files (median of 5)`,
      `${warmMedian.toFixed(3)} s (first ${warmRuns[0]!.toFixed(3)}, max ${warmSorted[4]!.toFixed(3)})`,
      `target <= 0.050 s ${warmMedian <= 0.05 ? 'MET' : 'MISSED'}`,
    ],
    [`  readdir + lstat of the same files alone (median of 5)`, `${floor.toFixed(3)} s`, `baseline: ${(warmMedian / floor).toFixed(2)}x of it`],
    [`  same, each in a fresh process (median of 3)`, `${fresh[1]!.toFixed(3)} s (min ${fresh[0]!.toFixed(3)}, max ${fresh[2]!.toFixed(3)})`, 'info'],
  ];
  if (rows.some((r) => r[2].includes('MISSED'))) process.exitCode = 1;
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${cores} cores, node ${process.version}, best of ${ROUNDS} for throughput\n`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
  console.log(`\npeak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}

if (process.argv.includes('--warm-child')) await warmChild();
else await main();
