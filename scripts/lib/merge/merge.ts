// mergeShards: a streaming k-way merge of sorted shard files into one JSONL file, written atomically.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../ui/errors.js';
import { compareKeys, formatKey, type ShardKey } from './header.js';
import { BufferedWriter } from './lines.js';
import { closeAll, openAll, StreamHeap, type ShardStream } from './stream.js';

export type MergeStrategy = 'concat' | { bestByScore: { scoreField: string; higherIsBetter: boolean } };

export interface MergeReport {
  shards: { index: number; records: number; sha256: string; bytes: number }[];
  merged: { records: number; sha256: string; bytes: number };
  strategy: MergeStrategy;
}

/**
 * Merges shard files (each sorted by key, as the contract requires) into `out`: the record lines
 * only, no header, sorted by key, each line byte for byte as in its shard.
 *
 * - `'concat'`: every record; equal keys (only possible without verifyCoverage) keep shard order.
 * - `bestByScore`: one record per key, the one whose numeric `scoreField` is best; ties keep the
 *   first (lowest shard index, then earliest line). A record without a finite number there is an error.
 *
 * Memory is bounded: one read buffer per shard, one write buffer and, for best-by-score, the best
 * line of the current key. Checks done on the way (run verifyCoverage first for the rest): each
 * record has a key (concat reads just the key of lines starting `{"key":<int>`, other lines and
 * every best-by-score line are parsed in full), keys are sorted within a shard, the record counts
 * match the headers. The output goes to a temporary file beside `out`, is fsynced and renamed over `out`; on
 * failure `out` is untouched.
 */
export async function mergeShards(files: string[], strategy: MergeStrategy, out: string): Promise<MergeReport> {
  const best = strategy === 'concat' ? undefined : strategy.bestByScore;
  const streams = await openAll(files, {
    allowDuplicateKeys: best !== undefined,
    checkRange: false,
    keysOnly: best === undefined,
    fix: (i) => `re-run shard ${i}`,
  });
  streams.sort((a, b) => a.index - b.index);
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let committed = false;
  const fh = await open(tmp, 'wx');
  try {
    const writer = new BufferedWriter(fh);
    const heap = new StreamHeap();
    for (const [pos, s] of streams.entries()) if (await s.advance()) heap.push(s, pos);
    let records = 0;
    if (!best) {
      for (let top = heap.peek(); top; top = heap.peek()) {
        const s = top.s;
        const r = s.reader;
        records++;
        if (r.unterminated) {
          await writer.line(r.buf, r.start, r.end); // the file's last line, without its '\n'
          await s.advance();
          heap.fixTop();
          continue;
        }
        // While the top stream stays first (shards cut by key range follow one another), its next
        // buffered lines join a run that goes out as one copy of their bytes, '\n's and all.
        const from = r.start;
        let next = false; // whether the stream moved to a line the run leaves out
        while (s.advanceBuffered()) {
          if (!heap.topStaysFirst()) {
            next = true;
            break;
          }
          records++;
        }
        const to = next ? r.start : r.taken;
        if (!writer.linesBuffered(r.buf, from, to)) await writer.lines(r.buf, from, to);
        if (!next) await s.advance(); // the run used up what was buffered: read on
        heap.fixTop();
      }
    } else {
      const { scoreField, higherIsBetter } = best;
      let held: { key: ShardKey; score: number; line: Buffer } | undefined;
      const scoreOf = (s: ShardStream): number => {
        const v = s.record[scoreField];
        if (typeof v !== 'number' || !Number.isFinite(v))
          throw new UserError(
            `shard ${s.index} has no numeric "${scoreField}" on line ${s.reader.lineNo} (key ${formatKey(s.key)}); fix the experiment's output or the merge's score field`,
          );
        return v;
      };
      for (let top = heap.peek(); top; top = heap.peek()) {
        const s = top.s;
        const score = scoreOf(s);
        if (held && compareKeys(held.key, s.key) === 0) {
          if (higherIsBetter ? score > held.score : score < held.score)
            held = { key: s.key, score, line: Buffer.from(s.reader.buf.subarray(s.reader.start, s.reader.end)) };
        } else {
          if (held) {
            await writer.line(held.line, 0, held.line.length);
            records++;
          }
          held = { key: s.key, score, line: Buffer.from(s.reader.buf.subarray(s.reader.start, s.reader.end)) };
        }
        if (!s.advanceBuffered()) await s.advance();
        heap.fixTop();
      }
      if (held) {
        await writer.line(held.line, 0, held.line.length);
        records++;
      }
    }
    await writer.done();
    await fh.sync();
    await fh.close();
    await rename(tmp, out);
    committed = true;
    await fsyncDir(dirname(out));
    return {
      shards: streams.map((s) => ({ index: s.index, records: s.records, sha256: s.reader.digest(), bytes: s.reader.bytes })),
      merged: { records, sha256: writer.digest(), bytes: writer.bytes },
      strategy,
    };
  } finally {
    await closeAll(streams);
    if (!committed) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  }
}
