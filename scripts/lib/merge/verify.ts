// verifyCoverage: do these shard files make up one complete, consistent run?
import { basename } from 'node:path';
import { UserError } from '../ui/errors.js';
import { compareKeys, formatKey, parseShardFileName, readShardHeader, type ShardHeader, type ShardKey } from './header.js';
import { closeAll, openAll, StreamHeap } from './stream.js';

export interface CoverageExpectation {
  /** The run's shard count (`shards.count` of the spec). */
  count: number;
  /** The run's pins digest; every shard must carry it. */
  pinsDigest: string;
  /** Named in the fix commands; `<run-id>` when absent. */
  runId?: string;
  /** Number of work units N: the ranges must cover exactly [0, N). Unchecked when absent. */
  total?: number;
  /** Allow one key on several records (inputs of a best-by-score merge). Default false. */
  allowDuplicateKeys?: boolean;
}

export interface ShardReport {
  index: number;
  file: string;
  keyRange: [number, number];
  records: number;
  bytes: number;
  sha256: string;
}

const short = (digest: string) => digest.slice(0, 8);
const fixCmd = (runId: string | undefined, shards: number[]) =>
  `make retry run=${runId ?? '<run-id>'} shard=${shards.join(',')}`;

/**
 * Checks, and throws a one-line UserError naming the shard and the fix at the first problem:
 * every index 0..count-1 exactly once, one shard count and pins digest, key ranges that tile
 * [0, total) with no gap or overlap, then (one streaming pass) every record line: valid JSON with a
 * string or integer `key`, integer keys inside their shard's range, keys strictly increasing within
 * a shard, no key in two shards, and as many records as the header says (a short or cut-off file
 * is "truncated").
 *
 * Duplicate keys across shards are found by a k-way merge of the already-sorted shards on key:
 * equal keys come out adjacent, so memory is one record per shard whatever the sizes.
 */
export async function verifyCoverage(files: string[], expect: CoverageExpectation): Promise<ShardReport[]> {
  const { count, pinsDigest, runId } = expect;
  const rerun = (shards: number[]) =>
    `re-run ${shards.length > 1 ? 'them' : 'it'} with ${fixCmd(runId, shards)}`;
  const nameOf = (file: string) => {
    const parsed = parseShardFileName(file);
    return parsed ? `shard ${parsed.index} of ${parsed.count} (${basename(file)})` : file;
  };

  // 1. Headers only.
  const headers: { file: string; h: ShardHeader }[] = [];
  for (const file of files) {
    let h: ShardHeader;
    try {
      h = await readShardHeader(file);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      const parsed = parseShardFileName(file);
      const problem = err.message.slice(file.length + 2);
      throw new UserError(`${nameOf(file)} has a bad header: ${problem}; ${parsed ? rerun([parsed.index]) : 'remove it or re-run its shard'}`);
    }
    headers.push({ file, h });
  }
  for (const { file, h } of headers) {
    if (h.shard_count !== count)
      throw new UserError(
        `shard ${h.shard_index} (${basename(file)}) was cut for ${h.shard_count} shards, the run has ${count} (stale: from another run); ${rerun([h.shard_index])}`,
      );
  }
  const byIndex = new Map<number, string[]>();
  for (const { file, h } of headers) byIndex.set(h.shard_index, [...(byIndex.get(h.shard_index) ?? []), file]);
  for (const [index, list] of [...byIndex].sort((a, b) => a[0] - b[0])) {
    if (list.length > 1)
      throw new UserError(`shard ${index} appears twice (${list.join(', ')}); keep one copy and remove the others`);
  }
  const missing = [...Array(count).keys()].filter((i) => !byIndex.has(i));
  if (missing.length > 0)
    throw new UserError(
      missing.length === 1
        ? `shard ${missing[0]} of ${count} is missing; ${rerun(missing)}`
        : `shards ${missing.join(', ')} of ${count} are missing; ${rerun(missing)}`,
    );
  for (const { h } of [...headers].sort((a, b) => a.h.shard_index - b.h.shard_index)) {
    if (h.pins_digest !== pinsDigest)
      throw new UserError(
        `shard ${h.shard_index} has pins digest ${short(h.pins_digest)}, the run has ${short(pinsDigest)} (stale: from another run); ${rerun([h.shard_index])}`,
      );
  }

  // 2. Key ranges tile [0, total): sorted by lo, each starts where the previous ended.
  const ranged = headers
    .map(({ h }) => ({ i: h.shard_index, lo: h.key_range[0], hi: h.key_range[1] }))
    .filter((r) => r.hi > r.lo)
    .sort((a, b) => a.lo - b.lo || a.i - b.i);
  const fmt = (r: { i: number; lo: number; hi: number }) => `shard ${r.i} [${r.lo}, ${r.hi})`;
  let end = 0;
  let prev: { i: number; lo: number; hi: number } | undefined;
  for (const r of ranged) {
    if (r.lo < end && prev)
      throw new UserError(
        `shard ${r.i} has key range [${r.lo}, ${r.hi}), overlapping ${fmt(prev)}; the shards were cut differently, ${rerun([prev.i, r.i].sort((a, b) => a - b))}`,
      );
    if (r.lo > end)
      throw new UserError(
        `no shard covers keys [${end}, ${r.lo}): a gap ${prev ? `between ${fmt(prev)} and ${fmt(r)}` : `before ${fmt(r)}`}; the shards were cut differently, ${rerun(prev ? [prev.i, r.i].sort((a, b) => a - b) : [r.i])}`,
      );
    end = r.hi;
    prev = r;
  }
  if (expect.total !== undefined && end !== expect.total) {
    const last = prev ? [prev.i] : [count - 1];
    throw new UserError(
      end < expect.total
        ? `no shard covers keys [${end}, ${expect.total}): a gap after ${prev ? fmt(prev) : 'the last shard'}; ${rerun(last)}`
        : `${prev ? fmt(prev) : 'a shard'} reaches past the run's ${expect.total} keys; ${rerun(last)}`,
    );
  }

  // 3. Contents, one streaming k-way pass in key order.
  const ordered = [...headers].sort((a, b) => a.h.shard_index - b.h.shard_index).map((x) => x.file);
  const streams = await openAll(ordered, {
    allowDuplicateKeys: expect.allowDuplicateKeys ?? false,
    checkRange: true,
    fix: (i) => rerun([i]),
  });
  try {
    const heap = new StreamHeap();
    for (const [pos, s] of streams.entries()) if (await s.advance()) heap.push(s, pos);
    let last: { key: ShardKey; index: number } | undefined;
    for (let top = heap.peek(); top; top = heap.peek()) {
      const s = top.s;
      if (last && last.index !== s.index && compareKeys(last.key, s.key) === 0 && !expect.allowDuplicateKeys) {
        const pair = [last.index, s.index].sort((a, b) => a - b);
        throw new UserError(
          `key ${formatKey(s.key)} appears in shard ${pair[0]} and shard ${pair[1]} (duplicate work); ${rerun(pair)}`,
        );
      }
      last = { key: s.key, index: s.index };
      if (!s.advanceBuffered()) await s.advance();
      heap.fixTop();
    }
    return streams.map((s) => ({
      index: s.index,
      file: s.file,
      keyRange: s.header.key_range,
      records: s.records,
      bytes: s.reader.bytes,
      sha256: s.reader.digest(),
    }));
  } finally {
    await closeAll(streams);
  }
}
