// A fleet search's merge at scale (not a test): npx tsx bench/scale-merge.ts
// 32 sorted shard files of GiB gibibytes in all, merged by mergeShards (concat, the merge make
// merge runs) in a fresh process that reports its own peak RSS, beside `cat` of the same files
// into one and `sync` of it (the floor: the bytes read and written durably once, no keys, no
// hashes). The merge must run
// at constant memory: peak RSS <= 128 MiB at every size, and no more at the largest size than at
// the smallest plus 16 MiB. SCALE_MERGE_GIB=1,3,10 (the default) measures each size; inputs are
// written to bench/.tmp/scale-merge/ and removed after each size.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleChild } from './lib/bundle-child.js';

const DIR = fileURLToPath(new URL('./.tmp/scale-merge/', import.meta.url));
const SIZES = (process.env.SCALE_MERGE_GIB ?? '1,3,10').split(',').map(Number);
const SHARDS = 32;
const RSS_TARGET_MIB = 128;
const FLAT_MIB = 16;
const TEXT = 'x'.repeat(174); // a record of 256 bytes with its newline
const shardFile = (i: number) => path.join(DIR, `shard-${i}-of-${SHARDS}.jsonl`);

const CHILD = path.join(DIR, '..', 'merge-child.mjs');

/**
 * `gib` GiB of 256-byte records over the shards; shard i holds keys K + i, K + i + SHARDS, ...
 * (interleaved, as a striped search's are). Every key has ten digits (K = 10^9), so each line has
 * the same length and a block of lines is written by patching the digits of one template.
 */
function generate(gib: number): number {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const K = 1e9;
  const template = `{"key":${K},"score":0.000,"params":{"k":10,"metric":"euclidean"},"text":"${TEXT}"}\n`;
  const LEN = template.length;
  const at = { key: 7, score: template.indexOf('0.000') + 2, k: template.indexOf('"k":') + 4 };
  const BLOCK = 8192;
  const block = Buffer.alloc(LEN * BLOCK);
  for (let n = 0; n < BLOCK; n++) block.write(template, n * LEN, 'latin1');
  const digits = (buf: Buffer, off: number, width: number, value: number) => {
    for (let d = width - 1; d >= 0; d--, value = Math.floor(value / 10)) buf[off + d] = 48 + (value % 10);
  };
  const perShard = Math.ceil((gib * 2 ** 30) / SHARDS / LEN);
  for (let i = 0; i < SHARDS; i++) {
    const fd = openSync(shardFile(i), 'w');
    writeSync(fd, JSON.stringify({ format: 'switchyard-shard/1', shard_index: i, shard_count: SHARDS, pins_digest: 'bench', key_range: [K, K + perShard * SHARDS], records: perShard }) + '\n');
    for (let j = 0; j < perShard; j += BLOCK) {
      const lines = Math.min(BLOCK, perShard - j);
      for (let n = 0; n < lines; n++) {
        const key = K + (j + n) * SHARDS + i;
        digits(block, n * LEN + at.key, 10, key);
        digits(block, n * LEN + at.score, 3, key % 997);
        digits(block, n * LEN + at.k, 2, 10 + (key % 17));
      }
      writeSync(fd, block, 0, lines * LEN);
    }
    closeSync(fd);
  }
  return perShard * SHARDS;
}

const wall = (cmd: string, args: string[], stdout: 'pipe' | number = 'pipe') => {
  const t = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', stdout, 'inherit'], maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}`);
  return { s: (performance.now() - t) / 1000, stdout: r.stdout?.toString() ?? '' };
};

await bundleChild('merge-child', CHILD);
process.stdout.write('(figures from a shared, loaded machine are noisy; compare a row with its baseline)\n');
const rss: number[] = [];
try {
  for (const gib of SIZES) {
    process.stdout.write(`writing ${gib} GiB of shards ...\n`);
    const records = generate(gib);
    const files = Array.from({ length: SHARDS }, (_, i) => shardFile(i));
    const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
    const out = path.join(DIR, 'merged.jsonl');
    const ours = wall(process.execPath, [CHILD, out, ...files]);
    const child = JSON.parse(ours.stdout) as { ms: number; maxRssKiB: number; heapTotal: number; external: number; records: number };
    if (child.records !== records) throw new Error(`merged ${child.records} of ${records} records`);
    rmSync(out);
    // The floor writes durably too, as the merge does (it fsyncs before its rename).
    const catOut = openSync(out, 'w');
    const cat = wall('cat', files, catOut);
    closeSync(catOut);
    cat.s += wall('sync', [out]).s;
    rmSync(out);
    const mib = child.maxRssKiB / 1024;
    rss.push(mib);
    const mbs = (s: number) => (bytes / 1e6 / s).toFixed(0);
    process.stdout.write(
      `${gib} GiB (${records} records): merge ${ours.s.toFixed(1)} s process wall, ${mbs(child.ms / 1000)} MB/s in the merge, peak RSS ${mib.toFixed(0)} MiB (V8 heap ${(child.heapTotal / 2 ** 20).toFixed(0)} MiB, buffers ${(child.external / 2 ** 20).toFixed(0)} MiB at the end); cat + sync ${cat.s.toFixed(1)} s, ${mbs(cat.s)} MB/s (${(ours.s / cat.s).toFixed(1)}x)\n`,
    );
  }
} finally {
  rmSync(DIR, { recursive: true, force: true });
}
const peak = Math.max(...rss);
const growth = rss.at(-1)! - rss[0]!;
const ok = peak <= RSS_TARGET_MIB && (SIZES.length < 2 || growth <= FLAT_MIB) && Math.max(...SIZES) >= 10;
process.stdout.write(`peak RSS ${peak.toFixed(0)} MiB (target <= ${RSS_TARGET_MIB} MiB), ${growth >= 0 ? '+' : ''}${growth.toFixed(0)} MiB from ${SIZES[0]} to ${SIZES.at(-1)} GiB (target <= ${FLAT_MIB} MiB, measured up to 10 GiB): ${ok ? 'MET' : 'MISSED'}\n`);
process.exitCode = ok ? 0 : 1;
