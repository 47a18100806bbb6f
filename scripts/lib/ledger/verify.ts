// Verifying the ledger itself: every line parses, seq runs 1..n, each prev is the hash of the
// line before it, and the local head and the store anchor agree with its end. One pass, each
// line hashed once. What the entries say exists in the store is checked by audit/, from the
// entries handed to onEntry; a broken ledger is reported first, since what its lines say after
// an edit cannot be trusted (an edited `ckpt.pruned` would otherwise surface as a missing step).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { anchorKey, anchorProblem, anchorsOfLedgerFile, ledgerId, readAnchor, type AnchorProblem, type AnchorStore, type LedgerAnchor } from './anchor.js';
import { withFileLock } from './file-lock.js';
import { isHeadSigned, readHead, type LedgerHead } from './head.js';
import { type LedgerEntry, ZERO_HASH, hashLine, parseLine, splitLines } from './format.js';

export interface VerifyLedgerOptions {
  /** check the ledger against its anchor in this store (HMAC-checked with `key` when set) */
  anchor?: { store: AnchorStore; key: string | null };
  /** each entry, in order, up to the first break in the chain */
  onEntry?: (e: LedgerEntry) => void;
}

export interface LedgerTipInfo {
  id: string;
  seq: number;
  sha256: string;
  prev: string;
}

export interface LedgerVerifyResult {
  ok: boolean;
  /** Lines in the file (a cut-off last line included). */
  entries: number;
  firstBad?: { line: number; reason: string };
  /** the one problem is a missing (or, with a key, unsigned) store anchor of an intact chain */
  anchorRepairable?: boolean;
  /** the ledger's id and newest entry (for anchoring it) */
  tip?: LedgerTipInfo;
}

type Bad = { line: number; reason: string };

interface Snapshot {
  data: Buffer;
  exists: boolean;
  /** a string when the head file is there but not a head */
  head: LedgerHead | null | string;
  /** undefined when no anchor was asked for, or the ledger has no first line to name it by */
  anchor?: LedgerAnchor | null | string;
  id?: string;
}

/** The ledger, its head and its anchor as one consistent picture: read under the append lock. */
async function snapshot(ledgerPath: string, anchor: VerifyLedgerOptions['anchor']): Promise<Snapshot> {
  const read = async (): Promise<Snapshot> => {
    const head = await readHead(ledgerPath);
    const data = await readFile(ledgerPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!data) return { data: Buffer.alloc(0), exists: false, head };
    const nl = data.indexOf(0x0a);
    if (!anchor || nl === -1) return { data, exists: true, head };
    const id = ledgerId(data.subarray(0, nl));
    return { data, exists: true, head, id, anchor: await readAnchor(anchor.store, id) };
  };
  return existsSync(ledgerPath) ? withFileLock(`${ledgerPath}.lock`, read) : read();
}

export async function verifyLedger(ledgerPath: string, opts: VerifyLedgerOptions = {}): Promise<LedgerVerifyResult> {
  const snap = await snapshot(ledgerPath, opts.anchor);
  // An emptied ledger without its head is a deleted one: the chain cannot see it either.
  if (!snap.data.length && !snap.head) return opts.anchor ? deletedLedger(opts.anchor.store, ledgerPath, snap.exists) : { ok: true, entries: 0 };
  const { lines, complete } = splitLines(snap.data);
  const wanted = typeof snap.anchor === 'object' && snap.anchor ? snap.anchor.seq : 0;
  const chain = checkChain(lines, complete, wanted, opts.onEntry);
  const head = typeof snap.head === 'object' ? snap.head : null;
  const damagedHead = typeof snap.head === 'string' ? { line: Math.max(lines.length, 1), reason: `line ${Math.max(lines.length, 1)}: ${snap.head}` } : undefined;
  const problems: (Bad | AnchorProblem | undefined)[] = [chain.bad, head ? checkHead(lines, head) : damagedHead];
  if (opts.anchor && snap.anchor !== undefined && snap.id) {
    const trusted = head && isHeadSigned(head, opts.anchor.key) ? head : null;
    const tip = { count: lines.length, last: chain.last, hashAt: (seq: number) => (seq === wanted ? chain.atWanted : undefined), head: trusted };
    problems.push(anchorProblem(snap.anchor, tip, opts.anchor.key, opts.anchor.store.locate(anchorKey(snap.id))) ?? undefined);
  }
  const found = problems.filter((b): b is Bad | AnchorProblem => !!b).sort((a, b) => a.line - b.line);
  const tip = snap.id ? { id: snap.id, seq: lines.length, sha256: chain.last, prev: chain.beforeLast } : undefined;
  if (!found.length) return { ok: true, entries: lines.length, tip };
  const repairable = found.length === 1 && 'repairable' in found[0]! && !!found[0].repairable;
  return { ok: false, entries: lines.length, firstBad: { line: found[0]!.line, reason: found[0]!.reason }, ...(repairable ? { anchorRepairable: true } : {}), tip };
}

/**
 * No line and no head: fine where none was ever written, not when the store anchors one kept in
 * this file. An empty file may also be a first append cut off after its anchor (seq 1 after
 * the zero hash), which the next append goes on from.
 */
async function deletedLedger(store: AnchorStore, ledgerPath: string, emptied: boolean): Promise<LedgerVerifyResult> {
  const cutOffFirst = (a: Partial<LedgerAnchor>) => emptied && a.seq === 1 && a.prev === ZERO_HASH;
  const left = await anchorsOfLedgerFile(store, ledgerPath, (a) => !cutOffFirst(a));
  if (!left.length) return { ok: true, entries: 0 };
  const more = left.length > 1 ? ` (and ${left.length - 1} more)` : '';
  const what = emptied ? 'the ledger is empty and its head is missing' : 'the ledger and its head are missing';
  const reason = `line 1: ${what} but the store anchors a ledger kept in this file (${left[0]}${more}): they were deleted; restore them, or remove that anchor if the ledger was discarded on purpose`;
  return { ok: false, entries: 0, firstBad: { line: 1, reason } };
}

/**
 * The newest line the head records must still be there, unchanged. (One line more than the
 * head is a crash between an append and its head update, and is fine: the chain covers it.)
 */
function checkHead(lines: Buffer[], head: LedgerHead): Bad | undefined {
  if (lines.length < head.seq) {
    const n = Math.max(lines.length, 1);
    return { line: n, reason: `line ${n}: the ledger ends at line ${lines.length} but its head records ${head.seq} entries (lines were removed from the end)` };
  }
  if (hashLine(lines[head.seq - 1]!) !== head.sha256) {
    return { line: head.seq, reason: `line ${head.seq} was edited: it no longer matches the hash recorded in the ledger head` };
  }
  return undefined;
}

/** Walks the chain, each line hashed once; the first break, the last hashes, and line `wanted`'s hash. */
function checkChain(
  lines: Buffer[],
  complete: boolean,
  wanted: number,
  onEntry?: (e: LedgerEntry) => void,
): { bad?: Bad; last: string; beforeLast: string; atWanted?: string } {
  let prevHash = ZERO_HASH;
  let beforeLast = ZERO_HASH;
  let atWanted: string | undefined;
  let bad: Bad | undefined;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!;
    const hash = hashLine(line);
    if (n === wanted) atWanted = hash;
    if (!bad) bad = lineProblem(lines, i, complete, prevHash, onEntry);
    beforeLast = prevHash;
    prevHash = hash;
  }
  return { bad, last: prevHash, beforeLast, atWanted };
}

function lineProblem(lines: Buffer[], i: number, complete: boolean, prevHash: string, onEntry?: (e: LedgerEntry) => void): Bad | undefined {
  const n = i + 1;
  const line = lines[i]!;
  if (i === lines.length - 1 && !complete) {
    return { line: n, reason: `line ${n}: truncated last line (no newline at the end; an append was cut off)` };
  }
  // The common case, cheaply: a well-formed entry in its place (prev equal to a real hash is valid hex).
  const fast = quickParse(line);
  if (fast && fast.seq === n && fast.prev === prevHash && typeof fast.ts === 'string' && typeof fast.type === 'string' && fast.type) {
    onEntry?.(fast);
    return undefined;
  }
  const entry = parseLine(line);
  if (typeof entry === 'string') {
    const what = line.length === 0 ? 'empty line' : entry;
    return { line: n, reason: `line ${n}: ${what} (edited, or damaged by a partial write)` };
  }
  if (entry.seq !== n) {
    const hint = entry.seq > n ? 'a line before it was removed' : 'a line before it was inserted or duplicated';
    return { line: n, reason: `line ${n}: seq is ${entry.seq}, expected ${n} (${hint}, or seq was edited)` };
  }
  if (entry.prev !== prevHash) return prevBreak(lines, i);
  onEntry?.(entry);
  return undefined;
}

function quickParse(line: Buffer): LedgerEntry | null {
  try {
    const v = JSON.parse(line.toString()) as LedgerEntry | null;
    return typeof v === 'object' && v !== null ? v : null;
  } catch {
    return null;
  }
}

/**
 * Line i+1's prev does not match line i. If line i+1's own hash still matches the prev of the
 * line after it, line i+1 is intact and line i was edited; if that link is broken too, line i+1
 * was edited (its prev field, or the line and the one before it).
 */
function prevBreak(lines: Buffer[], i: number): Bad {
  const n = i + 1;
  if (i === 0) return { line: 1, reason: 'line 1: prev must be 64 zeros for the first line (line 1 was edited)' };
  const next = lines[i + 1] ? parseLine(lines[i + 1]!) : null;
  if (next === null) {
    return { line: n, reason: `line ${n}: prev hash does not match line ${n - 1} (line ${n - 1} or line ${n} was edited, or a line was inserted or removed)` };
  }
  if (typeof next !== 'string' && next.prev === hashLine(lines[i]!)) {
    return { line: n - 1, reason: `line ${n - 1} was edited: its hash no longer matches the prev recorded in line ${n}` };
  }
  return { line: n, reason: `line ${n} was edited: its prev does not match line ${n - 1} and its hash does not match line ${n + 1}'s prev` };
}
