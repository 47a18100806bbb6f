// scripts/lib/merge: coverage rejections name the shard; concat and best-by-score merges; bounded memory.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeShards, readShardHeader, shardFileName, shardKeyRange, verifyCoverage } from '../../scripts/lib/merge/index.js';
import { UserError } from '../../scripts/lib/ui/errors.js';

const PINS = 'ef567890aa';
let root: string;
let n = 0;

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'sy-merge-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshDir(): string {
  const dir = path.join(root, `t${n++}`);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

interface ShardOpts {
  pins?: string;
  range?: [number, number];
  headerRecords?: number;
  records?: Record<string, unknown>[];
}

/** Writes shard i of count over `total` keys, records {key, v} for its range unless given. */
function writeShard(dir: string, i: number, count: number, total: number, o: ShardOpts = {}): string {
  const range = o.range ?? shardKeyRange(total, i, count);
  const records = o.records ?? Array.from({ length: range[1] - range[0] }, (_, j) => ({ key: range[0] + j, v: `r${range[0] + j}` }));
  const header = {
    format: 'switchyard-shard/1',
    shard_index: i,
    shard_count: count,
    pins_digest: o.pins ?? PINS,
    key_range: range,
    records: o.headerRecords ?? records.length,
  };
  const file = path.join(dir, shardFileName(i, count));
  writeFileSync(file, [header, ...records].map((x) => JSON.stringify(x) + '\n').join(''), { flag: 'w' });
  return file;
}

function run(count: number, total: number, tweak: Record<number, ShardOpts> = {}): string[] {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: count }, (_, i) => writeShard(dir, i, count, total, tweak[i] ?? {}));
}



async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('expected a rejection');
}

const expectRun = { count: 6, pinsDigest: PINS, runId: 'knn-default-20261126T0315-1a2b3c4d', total: 60 };

describe('verifyCoverage', () => {
  it('accepts a complete run and reports every shard', async () => {
    const files = run(6, 60);
    const reports = await verifyCoverage([...files].reverse(), expectRun);
    expect(reports.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(reports[2]).toMatchObject({ records: 10, keyRange: [20, 30], bytes: readFileSync(files[2]!).length });
    expect(reports[2]!.sha256).toBe(createHash('sha256').update(readFileSync(files[2]!)).digest('hex'));
    expect(await readShardHeader(files[0]!)).toMatchObject({ shard_index: 0, shard_count: 6, key_range: [0, 10] });
  });

  it('names a missing shard and the retry command', async () => {
    const files = run(6, 60);
    const msg = await rejection(verifyCoverage(files.filter((_, i) => i !== 3), expectRun));
    expect(msg).toBe('shard 3 of 6 is missing; re-run it with make retry run=knn-default-20261126T0315-1a2b3c4d shard=3');
  });

  it('names a duplicated shard', async () => {
    const files = run(6, 60);
    const copy = path.join(path.dirname(files[2]!), 'copy-of-2.jsonl');
    copyFileSync(files[2]!, copy);
    const msg = await rejection(verifyCoverage([...files, copy], expectRun));
    expect(msg).toMatch(/^shard 2 appears twice \(.*shard-2-of-6\.jsonl, .*copy-of-2\.jsonl\)/);
  });

  it('names a shard from another run (pins digest)', async () => {
    const files = run(6, 60, { 4: { pins: 'abcd1234ff' } });
    const msg = await rejection(verifyCoverage(files, expectRun));
    expect(msg).toMatch(/^shard 4 has pins digest abcd1234, the run has ef567890 \(stale: from another run\); re-run it with make retry .* shard=4$/);
  });

  it('names a shard cut for another shard count', async () => {
    const files = run(6, 60);
    const dir = path.dirname(files[0]!);
    const other = writeShard(dir, 1, 4, 60);
    const msg = await rejection(verifyCoverage([...files.filter((_, i) => i !== 1), other], expectRun));
    expect(msg).toMatch(/^shard 1 \(shard-1-of-4\.jsonl\) was cut for 4 shards, the run has 6/);
  });

  it('names a truncated shard (too few lines, or a cut-off last line)', async () => {
    const files = run(6, 60, { 5: { headerRecords: 1000 } });
    expect(await rejection(verifyCoverage(files, expectRun))).toMatch(
      /^shard 5 of 6 is truncated: header says 1000 records, file has 10; re-run it with make retry .* shard=5$/,
    );
    const files2 = run(6, 60);
    const text = readFileSync(files2[5]!, 'utf8');
    writeFileSync(files2[5]!, text.slice(0, text.length - 7));
    expect(await rejection(verifyCoverage(files2, expectRun))).toMatch(/^shard 5 of 6 is truncated: header says 10 records, file has 9/);
    writeFileSync(files2[5]!, text.split('\n')[0]!.slice(0, 30));
    expect(await rejection(verifyCoverage(files2, expectRun))).toMatch(/^shard 5 of 6 \(shard-5-of-6\.jsonl\) has a bad header: .*cut off.*shard=5$/);
  });

  it('names a corrupt record line and an unsorted shard', async () => {
    const files = run(6, 60);
    const lines = readFileSync(files[1]!, 'utf8').split('\n');
    lines[3] = '{"key": 12, "v": oops}';
    writeFileSync(files[1]!, lines.join('\n'));
    expect(await rejection(verifyCoverage(files, expectRun))).toMatch(/^shard 1 of 6 is corrupt: line 4 is not valid JSON; re-run it/);
    const files2 = run(6, 60, { 2: { records: [{ key: 21 }, { key: 20 }], range: [20, 30], headerRecords: 2 } });
    expect(await rejection(verifyCoverage(files2, expectRun))).toMatch(/^shard 2 of 6 is not sorted by key: line 3 has key 20 after 21/);
  });

  it('accepts a header-only shard written without a final newline, and counts its records all the same', async () => {
    // 2 keys over 3 shards: shard 0's range is empty, and a writer that joins lines with '\n'
    // leaves its one line unterminated, as it leaves any shard's last record.
    const files = run(3, 2);
    const header = readFileSync(files[0]!, 'utf8').trimEnd();
    writeFileSync(files[0]!, header);
    expect((await verifyCoverage(files, { count: 3, pinsDigest: PINS, total: 2 })).map((r) => r.records)).toEqual([0, 1, 1]);
    const out = path.join(path.dirname(files[0]!), 'merged.jsonl');
    expect((await mergeShards(files, 'concat', out)).merged.records).toBe(2);
    expect(readFileSync(out, 'utf8')).toBe('{"key":0,"v":"r0"}\n{"key":1,"v":"r1"}\n');
    writeFileSync(files[0]!, header.replace('"records":0', '"records":2'));
    expect(await rejection(verifyCoverage(files, { count: 3, pinsDigest: PINS }))).toMatch(/^shard 0 of 3 is truncated: header says 2 records, file has 0; re-run it/);
  });

  it('reads a shard that starts with a UTF-8 byte-order mark, hashing the file as it is', async () => {
    const files = run(2, 4);
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), readFileSync(files[1]!)]);
    writeFileSync(files[1]!, withBom);
    const reports = await verifyCoverage(files, { count: 2, pinsDigest: PINS, total: 4 });
    expect(reports[1]!.sha256).toBe(createHash('sha256').update(withBom).digest('hex'));
    const out = path.join(path.dirname(files[0]!), 'merged.jsonl');
    await mergeShards(files, 'concat', out);
    expect(readFileSync(out, 'utf8')).toBe([0, 1, 2, 3].map((k) => `{"key":${k},"v":"r${k}"}\n`).join(''));
  });

  it('names overlapping ranges', async () => {
    const files = run(6, 60, { 3: { range: [25, 40] } });
    const msg = await rejection(verifyCoverage(files, expectRun));
    expect(msg).toMatch(/^shard 3 has key range \[25, 40\), overlapping shard 2 \[20, 30\); .* shard=2,3$/);
  });

  it('names a gap between ranges, and a short total', async () => {
    const files = run(6, 60, { 3: { range: [32, 40] } });
    expect(await rejection(verifyCoverage(files, expectRun))).toMatch(
      /^no shard covers keys \[30, 32\): a gap between shard 2 \[20, 30\) and shard 3 \[32, 40\); .* shard=2,3$/,
    );
    const files2 = run(6, 60, { 5: { range: [50, 58] } });
    expect(await rejection(verifyCoverage(files2, expectRun))).toMatch(/^no shard covers keys \[58, 60\): a gap after shard 5/);
  });

  it('names a key outside its shard range', async () => {
    const files = run(6, 60, { 2: { records: [{ key: 20 }, { key: 31 }], headerRecords: 2 } });
    expect(await rejection(verifyCoverage(files, expectRun))).toMatch(/^shard 2 of 6 has key 31 on line 3, outside its key range \[20, 30\)/);
  });

  it('names both shards of a duplicate key across shards', async () => {
    const files = run(3, 6, {
      0: { records: [{ key: 0 }, { key: 'apple' }, { key: 'pear' }] },
      2: { records: [{ key: 4 }, { key: 'kiwi' }, { key: 'pear' }] },
    });
    const msg = await rejection(verifyCoverage(files, { count: 3, pinsDigest: PINS, runId: 'r1' }));
    expect(msg).toBe('key "pear" appears in shard 0 and shard 2 (duplicate work); re-run them with make retry run=r1 shard=0,2');
    expect(await verifyCoverage(files, { count: 3, pinsDigest: PINS, allowDuplicateKeys: true })).toHaveLength(3);
  });
});

describe('mergeShards', () => {
  /**
   * Shard files of keys 0..total-1 over the whole key range, key k in shard ownerOf(k), each line
   * line(k); with lastUnterminated, the file holding the last key ends without its '\n'.
   */
  function dealtShards(count: number, total: number, ownerOf: (key: number) => number, line: (key: number) => string, opts: { lastUnterminated?: boolean } = {}) {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const files = Array.from({ length: count }, (_, i) => {
      const keys = Array.from({ length: total }, (_, k) => k).filter((k) => ownerOf(k) === i);
      const header = { format: 'switchyard-shard/1', shard_index: i, shard_count: count, pins_digest: PINS, key_range: [0, total], records: keys.length };
      const file = path.join(dir, shardFileName(i, count));
      const end = opts.lastUnterminated && i === ownerOf(total - 1) ? '' : '\n';
      writeFileSync(file, [JSON.stringify(header), ...keys.map(line)].join('\n') + end);
      return file;
    });
    return { dir, files };
  }

  /** Merges dealt shards with concat; the output must be every key's line in key order, byte for byte. */
  async function concatInKeyOrder(dir: string, files: string[], total: number, line: (key: number) => string) {
    const out = path.join(dir, 'merged.jsonl');
    const report = await mergeShards(files, 'concat', out);
    const expected = Array.from({ length: total }, (_, k) => line(k) + '\n').join('');
    const text = readFileSync(out, 'utf8');
    expect(text.length).toBe(expected.length);
    expect(text === expected).toBe(true);
    return { report, expected };
  }

  it('concat: all records sorted by key, lines byte for byte, atomic output', async () => {
    const files = run(3, 6, {
      0: { records: [{ key: 0, a: 1 }, { key: 1 }, { key: 'b', z: [1, 2] }] },
      1: { records: [{ key: 2 }, { key: 3 }, { key: 'a' }, { key: 'c' }] },
      2: { records: [{ key: 4 }, { key: 5, s: 'é' }] },
    });
    const out = path.join(path.dirname(files[0]!), 'merged.jsonl');
    writeFileSync(out, 'old');
    const report = await mergeShards(files.slice().reverse(), 'concat', out);
    const text = readFileSync(out, 'utf8');
    expect(text.trimEnd().split('\n').map((l) => JSON.parse(l).key)).toEqual([0, 1, 2, 3, 4, 5, 'a', 'b', 'c']);
    expect(text).toContain('{"key":5,"s":"é"}\n');
    expect(report.merged).toEqual({ records: 9, bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
    expect(report.shards.map((s) => [s.index, s.records])).toEqual([[0, 3], [1, 4], [2, 2]]);
    expect(report.shards[1]!.sha256).toBe(createHash('sha256').update(readFileSync(files[1]!)).digest('hex'));
    expect(report.strategy).toBe('concat');
    expect(readdirSync(path.dirname(out)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('best-by-score: one record per key, the best score, ties to the lowest shard', async () => {
    const files = run(2, 4, {
      0: { records: [{ key: 0, acc: 0.5 }, { key: 0, acc: 0.9 }, { key: 1, acc: 0.3 }, { key: 2, acc: 0.7, id: 'first' }] },
      1: { records: [{ key: 0, acc: 0.6 }, { key: 1, acc: 0.8 }, { key: 2, acc: 0.7, id: 'second' }, { key: 3, acc: 0.1 }] },
    });
    const out = path.join(path.dirname(files[0]!), 'best.jsonl');
    const hi = await mergeShards(files, { bestByScore: { scoreField: 'acc', higherIsBetter: true } }, out);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual([
      { key: 0, acc: 0.9 },
      { key: 1, acc: 0.8 },
      { key: 2, acc: 0.7, id: 'first' },
      { key: 3, acc: 0.1 },
    ]);
    expect(hi.merged.records).toBe(4);
    await mergeShards(files, { bestByScore: { scoreField: 'acc', higherIsBetter: false } }, out);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l).acc)).toEqual([0.5, 0.3, 0.7, 0.1]);
  });

  it('rejects a record without a numeric score and leaves the output alone', async () => {
    const files = run(2, 2, { 1: { records: [{ key: 1, acc: 'high' }] } });
    const out = path.join(path.dirname(files[0]!), 'best.jsonl');
    const msg = await rejection(mergeShards(files.map((f) => f), { bestByScore: { scoreField: 'acc', higherIsBetter: true } }, out));
    expect(msg).toMatch(/^shard [01] has no numeric "acc" on line 2/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(path.dirname(out)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('concat: byte for byte across read and write buffer edges, and lines longer than either', async () => {
    // Interleaved keys over 3 shards, lines of many lengths (the buffers' edges fall mid-line at
    // every offset), and two lines larger than the read chunk (1 MiB) and the write buffer.
    const count = 3;
    const total = 30_000;
    const line = (key: number) => {
      const len = key === 7_777 || key === 20_001 ? 5 << 20 : (key * 37) % 700;
      return JSON.stringify({ key, pad: 'p'.repeat(len) });
    };
    const { dir, files } = dealtShards(count, total, (key) => key % count, line);
    const { report, expected } = await concatInKeyOrder(dir, files, total, line);
    expect(report.merged).toEqual({ records: total, bytes: Buffer.byteLength(expected), sha256: createHash('sha256').update(expected).digest('hex') });
  });

  it('concat: runs of one shard between others, cut at buffer edges, byte for byte', async () => {
    // Keys dealt to 4 shards in blocks of 1 to 3,000 (a block goes out as one run), lines of many
    // lengths, one longer than the read chunk, and a last line without its '\n'.
    const count = 4;
    const total = 40_000;
    const line = (key: number) => JSON.stringify({ key, pad: 'q'.repeat(key === 12_345 ? 3 << 20 : (key * 53) % 900) });
    const owner: number[] = [];
    for (let key = 0, block = 0; key < total; block++) {
      const len = 1 + ((block * 7_919) % 3_000);
      for (let j = 0; j < len && key < total; j++, key++) owner.push(block % count);
    }
    const { dir, files } = dealtShards(count, total, (key) => owner[key]!, line, { lastUnterminated: true });
    const { report } = await concatInKeyOrder(dir, files, total, line);
    expect(report.merged.records).toBe(total);
    expect(report.shards.map((s) => s.records).reduce((a, b) => a + b)).toBe(total);
  });

  it('streams a large input (32 shards x 20k records) with bounded memory', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const count = 32;
    const per = 20_000;
    const pad = 'x'.repeat(100);
    const files: string[] = [];
    for (let i = 0; i < count; i++) {
      const file = path.join(dir, shardFileName(i, count));
      const lo = i * per;
      writeFileSync(
        file,
        JSON.stringify({ format: 'switchyard-shard/1', shard_index: i, shard_count: count, pins_digest: PINS, key_range: [lo, lo + per], records: per }) + '\n',
      );
      const lines: string[] = [];
      for (let j = 0; j < per; j++) lines.push(`{"key":${lo + j},"score":${(j * 7919) % 1000},"pad":"${pad}"}\n`);
      appendFileSync(file, lines.join(''));
      files.push(file);
    }
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      const reports = await verifyCoverage(files, { count, pinsDigest: PINS, total: count * per });
      expect(reports).toHaveLength(count);
      const out = path.join(dir, 'merged.jsonl');
      const report = await mergeShards(files, 'concat', out);
      expect(report.merged.records).toBe(count * per);
      peak = Math.max(peak, process.memoryUsage().rss);
    } finally {
      clearInterval(timer);
    }
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  });
});
