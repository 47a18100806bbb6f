// The run ledger's line format: one JSON object per line, keys in the order seq, ts, type,
// fields..., prev, where prev is the SHA-256 (hex) of the previous line's exact bytes.
import * as crypto from 'node:crypto';

export const ZERO_HASH = '0'.repeat(64);

/** Fields of the entry types Switchyard writes. Other type strings are accepted too. */
export interface LedgerFieldsByType {
  'run.created': { run_id: string; experiment: string; digest: string; pins: unknown; data_manifest?: string; data_manifest_sha256?: string };
  'attempt.started': { run_id: string; attempt: number; backend: string };
  'attempt.ended': { run_id: string; attempt: number; state: string; exit_code?: number | null; last_step?: number | null };
  /** `manifest`: path of the manifest relative to the store root. */
  'ckpt.committed': { run_id: string; step: number; manifest: string; manifest_sha256: string };
  'ckpt.pruned': { run_id: string; step: number };
  /** a step an attempt committed that never reached this machine's store: its worker was lost first */
  'ckpt.lost': { run_id: string; shard?: number; step: number; host: string; attempt?: number };
  /** make verify repair=1: a live step whose manifest is gone from the store; `removed` blobs deleted */
  'ckpt.abandoned': { run_id: string; shard?: number; step: number; reason: string; removed: number };
  /** make verify repair=1: files left in the store of a step that is not live (an interrupted prune or upload) */
  'ckpt.removed': { run_id: string; shard?: number; step: number; reason: string; removed: number };
  /** make verify repair=1: the store anchor (re)written for a ledger whose chain verified */
  'ledger.anchored': { line: number; sha256: string; reason: string };
  /** make submit is about to upload: its record under runs/<id>/submissions/<stamp>/ reads `unconfirmed` until `submission.made` */
  'submission.started': { run_id: string; stamp: string; file: string; sha256: string; competition: string };
  /** `score`: the local scorer's; `competition` and `kaggle_ref` when it was uploaded to Kaggle; `stamp` its folder (absent in older entries) */
  'submission.made': { run_id: string; stamp?: string; file: string; sha256: string; dry: boolean; score?: number | null; competition?: string; kaggle_ref?: string | null };
  /** make submissions: Kaggle scored (`complete`) or refused (`error`) an uploaded submission; once per submission */
  'submission.scored': { run_id: string; competition: string; kaggle_ref: string; status: 'complete' | 'error'; public_score: number | null; private_score: number | null };
  'outputs.saved': { run_id: string; files: { path: string; sha256: string }[] };
  /** a fleet shard moved off a lost host; it resumes from `resume_step` */
  'shard.moved': { run_id: string; shard: number; from: string; to: string; resume_step: number | null };
  /** `output`: the merged file's key relative to the store root */
  'merge.completed': { run_id: string; output: string; sha256: string; records: number | null; shards: number };
  /** an action taken from the dashboard: `who` the session, `action` what (stop, pull, retry, sync, submit), `result` ok or the error */
  'dashboard.action': { who: string; action: string; run_id?: string; host?: string; detail?: unknown; result: string };
  /** a torn last line (an append cut off by a crash or a full disk) moved to `recovery`, a file beside the ledger */
  'ledger.repaired': { recovery: string; bytes: number; sha256: string };
}
export type LedgerType = keyof LedgerFieldsByType;
/** The fields a type takes: the known types' fields are required (extra ones allowed); free-form for other types. */
export type LedgerFields<T extends string> = T extends LedgerType
  ? LedgerFieldsByType[T] & Record<string, unknown>
  : Record<string, unknown>;

export interface LedgerEntry {
  seq: number;
  ts: string;
  type: string;
  prev: string;
  [field: string]: unknown;
}

const RESERVED = ['seq', 'ts', 'type', 'prev'];

/** The line (no newline) for an entry; throws if `fields` uses a reserved key. */
export function formatLine(seq: number, ts: string, type: string, fields: object, prev: string): string {
  for (const key of RESERVED) {
    if (Object.hasOwn(fields, key)) throw new Error(`ledger: field "${key}" is reserved (type ${type})`);
  }
  return JSON.stringify({ seq, ts, type, ...fields, prev });
}

// crypto.hash (Node >= 20.12) hashes a short line ~2.5x faster than createHash: verify hashes every line.
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : null;

export function hashLine(line: Buffer | string): string {
  return oneShot ? oneShot('sha256', line, 'hex') : crypto.createHash('sha256').update(line).digest('hex');
}

/** Parses one line; returns the entry or a short description of what is wrong with it. */
export function parseLine(line: Buffer | string): LedgerEntry | string {
  let value: unknown;
  try {
    value = JSON.parse(line.toString());
  } catch {
    return 'not valid JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const e = value as Record<string, unknown>;
  if (!Number.isSafeInteger(e.seq)) return 'seq is missing or not an integer';
  if (typeof e.ts !== 'string') return 'ts is missing or not a string';
  if (typeof e.type !== 'string' || e.type === '') return 'type is missing or empty';
  if (typeof e.prev !== 'string' || !/^[0-9a-f]{64}$/.test(e.prev)) return 'prev is missing or not a SHA-256 hex digest';
  return e as LedgerEntry;
}

/** Splits file bytes into lines (without newlines); `complete` is false when the last line has no newline. */
export function splitLines(data: Buffer): { lines: Buffer[]; complete: boolean } {
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
    lines.push(data.subarray(start, nl));
    start = nl + 1;
  }
  const complete = start === data.length;
  if (!complete) lines.push(data.subarray(start));
  return { lines, complete };
}
