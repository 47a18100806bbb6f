// The shard file contract: `shard-<i>-of-<n>.jsonl`, a header line (ShardHeader below),
// then one JSON record per line with a string or integer `key`, sorted by key.
import { basename } from 'node:path';
import { withoutBom } from '../bom.js';
import { UserError } from '../ui/errors.js';
import { LineReader } from './lines.js';

export const SHARD_FORMAT = 'switchyard-shard/1';

export interface ShardHeader {
  format: typeof SHARD_FORMAT;
  shard_index: number;
  shard_count: number;
  pins_digest: string;
  /** Work-unit keys [lo, hi): inclusive lo, exclusive hi. */
  key_range: [number, number];
  records: number;
}

export type ShardKey = number | string;

/** The file name a shard is written under. */
export function shardFileName(index: number, count: number): string {
  return `shard-${index}-of-${count}.jsonl`;
}

/** Shard index and count from a file name `shard-<i>-of-<n>.jsonl`, if it has that shape. */
export function parseShardFileName(file: string): { index: number; count: number } | undefined {
  const m = /^shard-(\d+)-of-(\d+)\.jsonl$/.exec(basename(file));
  return m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
}

/** Work-unit range [floor(N*i/n), floor(N*(i+1)/n)) of shard i of n over keys 0..N-1. */
export function shardKeyRange(total: number, index: number, count: number): [number, number] {
  return [Math.floor((total * index) / count), Math.floor((total * (index + 1)) / count)];
}

/**
 * Total order of keys: integers (numerically) before strings (by UTF-16 code units, as JS `<`).
 * Python writers sorting strings by code point agree for any text without astral characters.
 */
export function compareKeys(a: ShardKey, b: ShardKey): number {
  if (typeof a === 'number') return typeof b === 'number' ? a - b : -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function formatKey(key: ShardKey): string {
  return typeof key === 'number' ? String(key) : JSON.stringify(key);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** Validates a parsed header line; returns a problem description or the header. */
export function checkHeader(value: unknown): ShardHeader | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the first line is not a JSON object';
  const h = value as Record<string, unknown>;
  if (h.format !== SHARD_FORMAT) return `format is ${JSON.stringify(h.format)}, expected "${SHARD_FORMAT}"`;
  if (!isInt(h.shard_count) || h.shard_count < 1) return 'shard_count is not a positive integer';
  if (!isInt(h.shard_index) || h.shard_index < 0 || h.shard_index >= h.shard_count)
    return `shard_index is not an integer in [0, ${h.shard_count})`;
  if (typeof h.pins_digest !== 'string' || h.pins_digest === '') return 'pins_digest is not a non-empty string';
  const r = h.key_range;
  if (!Array.isArray(r) || r.length !== 2 || !isInt(r[0]) || !isInt(r[1]) || r[0] < 0 || r[0] > r[1])
    return 'key_range is not [lo, hi] with integers 0 <= lo <= hi';
  if (!isInt(h.records) || h.records < 0) return 'records is not a non-negative integer';
  return {
    format: SHARD_FORMAT,
    shard_index: h.shard_index,
    shard_count: h.shard_count,
    pins_digest: h.pins_digest,
    key_range: [r[0] as number, r[1] as number],
    records: h.records,
  };
}

/** Reads and validates the header (first line) of a shard file; a UserError naming the file otherwise. */
export async function readShardHeader(file: string): Promise<ShardHeader> {
  const reader = await LineReader.open(file, 64 * 1024);
  try {
    const header = await headerOf(reader);
    if (typeof header === 'string') throw new UserError(`${file}: ${header}`);
    return header;
  } finally {
    await reader.close();
  }
}

/** Reads the first line of an open reader as a header; a problem description on failure. */
export async function headerOf(reader: LineReader): Promise<ShardHeader | string> {
  if (!(await reader.next())) return 'the file is empty (no header line)';
  let value: unknown;
  try {
    value = JSON.parse(withoutBom(reader.text()));
  } catch {
    return reader.unterminated ? 'the header line is cut off (truncated file)' : `not a ${SHARD_FORMAT} file: the first line is not JSON`;
  }
  // A whole header without its '\n' is a header-only file written without a final newline (no
  // JSON object survives losing its end); its `records` is checked against the lines like any.
  return checkHeader(value);
}
