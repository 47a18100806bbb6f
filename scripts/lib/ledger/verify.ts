// Verifying the ledger: every line parses, seq runs 1..n, each prev is the hash of the line
// before it, and (optionally) every live checkpoint it records still matches its manifest.
import { readFile } from 'node:fs/promises';
import { readHead, type LedgerHead } from './head.js';
import { type LedgerEntry, ZERO_HASH, hashLine, parseLine, splitLines } from './format.js';

export interface VerifyLedgerOptions {
  /**
   * Called for each `ckpt.committed` entry still live (not later pruned or re-committed), in line
   * order; a returned string (or a thrown error's message) is that line's failure.
   */
  checkManifest?: (entry: LedgerEntry) => Promise<string | null>;
}

export interface LedgerVerifyResult {
  ok: boolean;
  /** Lines in the file (a cut-off last line included). */
  entries: number;
  firstBad?: { line: number; reason: string };
}

type Bad = { line: number; reason: string };

export async function verifyLedger(ledgerPath: string, opts: VerifyLedgerOptions = {}): Promise<LedgerVerifyResult> {
  let data: Buffer;
  const head = await readHead(ledgerPath);
  try {
    data = await readFile(ledgerPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!head) return { ok: true, entries: 0 };
    data = Buffer.alloc(0);
  }
  const { lines, complete } = splitLines(data);
  const { trusted, bad: chainBad } = checkChain(lines, complete);
  // Manifests are checked only on the lines before a chain break: later lines are untrusted.
  const manifestBad = opts.checkManifest ? await checkManifests(trusted, opts.checkManifest) : undefined;
  const headBad = head ? checkHead(lines, head) : undefined;
  const firstBad = [chainBad, manifestBad, headBad].filter((b): b is Bad => !!b).sort((a, b) => a.line - b.line)[0];
  return firstBad ? { ok: false, entries: lines.length, firstBad } : { ok: true, entries: lines.length };
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

/** The entries up to the first break in the chain, and that break. */
function checkChain(lines: Buffer[], complete: boolean): { trusted: LedgerEntry[]; bad?: Bad } {
  const trusted: LedgerEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!;
    const isLast = i === lines.length - 1;
    if (isLast && !complete) {
      return { trusted, bad: { line: n, reason: `line ${n}: truncated last line (no newline at the end; an append was cut off)` } };
    }
    const entry = parseLine(line);
    if (typeof entry === 'string') {
      const what = line.length === 0 ? 'empty line' : entry;
      return { trusted, bad: { line: n, reason: `line ${n}: ${what} (edited, or damaged by a partial write)` } };
    }
    if (entry.seq !== n) {
      const hint = entry.seq > n ? 'a line before it was removed' : 'a line before it was inserted or duplicated';
      return { trusted, bad: { line: n, reason: `line ${n}: seq is ${entry.seq}, expected ${n} (${hint}, or seq was edited)` } };
    }
    const expected = i === 0 ? ZERO_HASH : hashLine(lines[i - 1]!);
    if (entry.prev !== expected) return { trusted: trusted.slice(0, -1), bad: prevBreak(lines, i) };
    trusted.push(entry);
  }
  return { trusted };
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

/** Runs checkManifest on each live ckpt.committed entry, in line order; the first failure. */
async function checkManifests(entries: LedgerEntry[], check: (e: LedgerEntry) => Promise<string | null>): Promise<Bad | undefined> {
  const live = new Map<string, LedgerEntry>();
  for (const e of entries) {
    // A fleet search's shards each count their own steps.
    const key = `${String(e.run_id)}\0${String(e.shard ?? '')}\0${String(e.step)}`;
    if (e.type === 'ckpt.committed') {
      live.delete(key); // a re-commit of the same step supersedes the earlier one
      live.set(key, e);
    } else if (e.type === 'ckpt.pruned' || e.type === 'ckpt.lost') live.delete(key);
  }
  const ordered = [...live.values()].sort((a, b) => a.seq - b.seq);
  for (const e of ordered) {
    const problem = await check(e).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (problem) return { line: e.seq, reason: `line ${e.seq}: checkpoint step ${String(e.step)} of run ${String(e.run_id)}${e.shard === undefined ? '' : ` shard ${String(e.shard)}`}: ${problem}` };
  }
  return undefined;
}
