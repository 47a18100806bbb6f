// The ledger's anchor in the store: `ledgers/<id>/head.json` beside `runs/`, holding the seq and
// hash of the newest entry (and its prev), HMAC-signed when `.env` sets SWITCHYARD_LEDGER_KEY.
// `<id>` is the first 16 hex of line 1's hash, so every ledger sharing a store has its own.
//
// It is written under the ledger's lock just BEFORE each line is appended: the anchor is never
// behind the ledger, so a line the anchor does not cover was not written by Switchyard. A crash
// between the two leaves the anchor one entry ahead, its prev the hash of the ledger's last
// line: that entry never happened, and the next append goes on from there. Only the local head,
// written after the line, tells that apart from a last line removed by hand, so that state is
// accepted only while the head (signed under a key) names the line before the anchored one.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { UserError } from '../ui/errors.js';
import { ZERO_HASH, hashLine } from './format.js';
import { readTrustedHead, type LedgerHead } from './head.js';

export const LEDGER_KEY_VAR = 'SWITCHYARD_LEDGER_KEY';

export interface LedgerAnchor {
  ledger: string;
  seq: number;
  sha256: string;
  /** the hash of line seq-1 (the new line's prev): lets a cut-off append be recognised */
  prev: string;
  hmac?: string;
  /** the ledger file it anchors, `<machine>:<path>` (not signed: it only tells a deleted ledger from another clone's) */
  file?: string;
}

/** The few objects of a store the anchor needs (a `Store` is one). */
export interface AnchorStore {
  getBytes(key: string): Promise<Buffer | null>;
  putBytes(key: string, data: string): Promise<unknown>;
  list(prefix: string): Promise<string[]>;
  locate(key: string): string;
}

/** What an anchor is checked against. */
export interface LedgerTip {
  /** lines in the ledger */
  count: number;
  /** hash of line `count` (ZERO_HASH when empty) */
  last: string;
  /** hash of line `seq`, for an anchor behind the ledger (verify knows them all) */
  hashAt?: (seq: number) => string | undefined;
  /** the local head, when there is one that is well formed and (under a key) signed */
  head: LedgerHead | null;
}

export interface AnchorProblem {
  line: number;
  reason: string;
  /** no anchor, or an unsigned one while a key is set: `make verify repair=1` anchors a trusted ledger */
  repairable?: boolean;
}

export const ledgerId = (firstLine: Buffer | string): string => hashLine(firstLine).slice(0, 16);
export const anchorKey = (id: string): string => `ledgers/${id}/head.json`;

function mac(a: Omit<LedgerAnchor, 'hmac'>, key: string): string {
  return createHmac('sha256', key).update(`${a.ledger}\n${a.seq}\n${a.sha256}\n${a.prev}`).digest('hex');
}

/** Names a ledger file across the machines and clones that share one store. */
export const ledgerFileName = (ledgerPath: string) => `${hostname()}:${path.resolve(ledgerPath)}`;

export function makeAnchor(ledger: string, seq: number, sha256: string, prev: string, key: string | null, ledgerPath: string): LedgerAnchor {
  const a = { ledger, seq, sha256, prev };
  return { ...a, ...(key ? { hmac: mac(a, key) } : {}), file: ledgerFileName(ledgerPath) };
}

function hmacMatches(a: LedgerAnchor, key: string): boolean {
  const want = Buffer.from(mac(a, key), 'hex');
  const got = Buffer.from(a.hmac ?? '', 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The anchor stored for ledger `id`: null when there is none, a string when it is unreadable. */
export async function readAnchor(store: AnchorStore, id: string): Promise<LedgerAnchor | null | string> {
  const bytes = await store.getBytes(anchorKey(id));
  if (!bytes) return null;
  try {
    const a = JSON.parse(bytes.toString('utf8')) as LedgerAnchor;
    if (a.ledger === id && Number.isSafeInteger(a.seq) && /^[0-9a-f]{64}$/.test(a.sha256) && /^[0-9a-f]{64}$/.test(a.prev) && (a.file === undefined || typeof a.file === 'string')) return a;
  } catch {
    // reported below
  }
  return `the store anchor ${store.locate(anchorKey(id))} is not a valid anchor (edited)`;
}

/**
 * The store's anchors of ledgers kept in the file `ledgerPath` on this machine: what a ledger that
 * is not there (nor its head) leaves behind when it was deleted. Another clone's or machine's
 * anchor does not count, nor one that names no file (written before anchors did), nor one
 * `counts` turns down.
 */
export async function anchorsOfLedgerFile(store: AnchorStore, ledgerPath: string, counts: (a: Partial<LedgerAnchor>) => boolean = () => true): Promise<string[]> {
  const keys = (await store.list('ledgers/')).filter((k) => /^ledgers\/[^/]+\/head\.json$/.test(k));
  const here = ledgerFileName(ledgerPath);
  const found: string[] = [];
  for (const key of keys) {
    let anchor: Partial<LedgerAnchor> | null;
    try {
      anchor = JSON.parse((await store.getBytes(key))?.toString('utf8') ?? 'null') as Partial<LedgerAnchor> | null;
    } catch {
      anchor = null;
    }
    if (anchor?.file === here && counts(anchor)) found.push(store.locate(key));
  }
  return found;
}

export async function writeAnchor(store: AnchorStore, anchor: LedgerAnchor): Promise<void> {
  await store.putBytes(anchorKey(anchor.ledger), JSON.stringify(anchor) + '\n');
}

/** Null when the anchor agrees with the ledger, else the line to name and why. */
export function anchorProblem(anchor: LedgerAnchor | null | string, tip: LedgerTip, key: string | null, where: string): AnchorProblem | null {
  const end = Math.max(tip.count, 1);
  if (typeof anchor === 'string') return { line: end, reason: `line ${end}: ${anchor}` };
  if (!anchor) {
    if (tip.count === 0) return null;
    return {
      line: 1,
      reason: `line 1: the store holds no anchor for this ledger (${where}): it was removed, the ledger was rewritten from line 1, or it predates anchoring; once you trust it, make verify repair=1 anchors it`,
      repairable: true,
    };
  }
  const at = Math.min(anchor.seq, end);
  if (key && !anchor.hmac) {
    return { line: at, reason: `line ${at}: the store anchor ${where} is not signed but SWITCHYARD_LEDGER_KEY is set (written before the key was, or forged); once you trust the ledger, make verify repair=1 signs it`, repairable: true };
  }
  if (key && !hmacMatches(anchor, key)) {
    return { line: at, reason: `line ${at}: the store anchor ${where} has a wrong HMAC (forged, or SWITCHYARD_LEDGER_KEY changed)` };
  }
  if (anchor.seq === tip.count && anchor.sha256 === tip.last) return null;
  // One ahead: an append cut off between its anchor and its line leaves the head at the line before.
  if (anchor.seq === tip.count + 1 && anchor.prev === tip.last && !(tip.head && tip.head.seq >= anchor.seq)) {
    if (tip.head?.seq === tip.count && tip.head.sha256 === tip.last) return null;
    return {
      line: end,
      reason: `line ${end}: the ledger ends at line ${tip.count} but the store anchor ${where} records ${anchor.seq} entries and no ${key ? 'signed ' : ''}local head shows that append was cut off (line ${anchor.seq} was removed, and the head with it); once you trust the ledger, make verify repair=1 anchors it at line ${tip.count}`,
      repairable: true,
    };
  }
  if (anchor.seq < tip.count) {
    const hash = tip.hashAt?.(anchor.seq);
    if (hash !== undefined && hash !== anchor.sha256) {
      return { line: anchor.seq, reason: `line ${anchor.seq} does not match the store anchor ${where}: the ledger was rewritten at or before it` };
    }
    const n = anchor.seq + 1;
    return { line: n, reason: `line ${n} was appended after the newest anchored entry (line ${anchor.seq}, ${where}): Switchyard did not write it` };
  }
  if (anchor.seq <= tip.count + 1 && (anchor.seq === tip.count || anchor.prev !== tip.last)) {
    return { line: end, reason: `line ${end} does not match the store anchor ${where}: the ledger was rewritten at or before it` };
  }
  return { line: end, reason: `line ${end}: the ledger ends at line ${tip.count} but the store anchor ${where} records ${anchor.seq} entries (lines were removed from the end)` };
}

/** The id of the ledger at `ledgerPath`, or null while it has no line. */
export async function ledgerIdOf(ledgerPath: string): Promise<string | null> {
  const first = await readFirstLine(ledgerPath).catch(() => null);
  return first?.length ? ledgerId(first) : null;
}

/** The bytes of a file's first line (without its newline). */
async function readFirstLine(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const chunks: Buffer[] = [];
    for (let pos = 0; ; ) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      if (nl !== -1 || bytesRead === 0) return Buffer.concat([...chunks, buf.subarray(0, nl === -1 ? bytesRead : nl)]);
      chunks.push(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** Runs under the ledger's lock before each line; names the key that signs the local head. */
export type AppendHook = (next: PendingAppend) => Promise<{ headKey: string | null } | void>;

/** What appendLedger calls under its lock with the line it is about to write. */
export interface PendingAppend {
  ledgerPath: string;
  seq: number;
  line: string;
  /** the ledger's last line, null when empty */
  last: Buffer | null;
}

/**
 * The append hook that keeps the store anchor current: it checks that the anchor covers the
 * ledger as it is (refusing to chain onto lines Switchyard did not write), then anchors the new
 * line. The anchor this process wrote last is trusted without reading it back.
 */
export function anchorBeforeAppend(store: AnchorStore, key: string | null): AppendHook {
  let mine: LedgerAnchor | null = null;
  return async ({ ledgerPath, seq, line, last }) => {
    const count = seq - 1;
    const lastHash = last ? hashLine(last) : ZERO_HASH;
    const id = count === 0 ? ledgerId(line) : (mine?.ledger ?? ledgerId(await readFirstLine(ledgerPath)));
    if (!(mine && mine.ledger === id && mine.seq === count && mine.sha256 === lastHash)) {
      const current = count === 0 ? null : await readAnchor(store, id);
      const tip = { count, last: lastHash, head: await readTrustedHead(ledgerPath, key) };
      const problem = anchorProblem(current, tip, key, store.locate(anchorKey(id)));
      if (problem) throw new UserError(`ledger ${ledgerPath}: ${problem.reason}; not appending (make verify checks the whole ledger)`);
    }
    mine = makeAnchor(id, seq, hashLine(line), lastHash, key, ledgerPath);
    await writeAnchor(store, mine);
    return { headKey: key };
  };
}
