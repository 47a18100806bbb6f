// The ledger's head: seq and hash of its newest line, kept beside it (`<ledger>.head`).
// The chain proves every line but the last and cannot see lines cut off the end; checked
// against the head, verify notices both. With SWITCHYARD_LEDGER_KEY set the head carries an
// HMAC, since it is what tells an append cut off before its line (the store anchor one entry
// ahead) from a last line removed by hand: a head without a valid HMAC cannot vouch for that.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

export interface LedgerHead {
  seq: number;
  sha256: string;
  /** HMAC-SHA256 of seq and sha256, keyed by the ledger key (when one is set) */
  hmac?: string;
}

const headPath = (ledgerPath: string) => `${ledgerPath}.head`;
const HEX64 = /^[0-9a-f]{64}$/;

function mac(head: LedgerHead, key: string): string {
  return createHmac('sha256', key).update(`ledger head\n${head.seq}\n${head.sha256}`).digest('hex');
}

/** The head for line `seq` with hash `sha256`, signed when a key is set. */
export function makeHead(seq: number, sha256: string, key: string | null): LedgerHead {
  return key ? { seq, sha256, hmac: mac({ seq, sha256 }, key) } : { seq, sha256 };
}

/** Whether the head can be trusted: always without a key, with one only when its HMAC matches. */
export function isHeadSigned(head: LedgerHead, key: string | null): boolean {
  if (!key) return true;
  const want = Buffer.from(mac(head, key), 'hex');
  const got = Buffer.from(head.hmac ?? '', 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

export async function writeHead(ledgerPath: string, head: LedgerHead): Promise<void> {
  const tmp = `${headPath(ledgerPath)}.tmp`;
  await writeFile(tmp, JSON.stringify(head) + '\n');
  await rename(tmp, headPath(ledgerPath));
}

/** The head beside the ledger: null when there is none, a string (the problem) when it is not a head. */
export async function readHead(ledgerPath: string): Promise<LedgerHead | null | string> {
  let text: string;
  try {
    text = await readFile(headPath(ledgerPath), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const h = JSON.parse(text) as Partial<LedgerHead> | null;
    if (h && Number.isSafeInteger(h.seq) && h.seq! >= 1 && HEX64.test(h.sha256 ?? '') && (h.hmac === undefined || HEX64.test(h.hmac))) {
      return h.hmac === undefined ? { seq: h.seq!, sha256: h.sha256! } : { seq: h.seq!, sha256: h.sha256!, hmac: h.hmac };
    }
  } catch {
    // reported below
  }
  return `the head file ${headPath(ledgerPath)} was edited or damaged (not a seq and a hash)`;
}

/** The head when it is there, well formed and (under a key) signed; else null. */
export async function readTrustedHead(ledgerPath: string, key: string | null): Promise<LedgerHead | null> {
  const head = await readHead(ledgerPath);
  return typeof head === 'object' && head && isHeadSigned(head, key) ? head : null;
}
