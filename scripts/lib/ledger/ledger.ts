// The run ledger: an append-only, hash-chained JSONL file. Appends from several processes are
// serialized by a lock file next to it (`<ledger>.lock`); the file is never rewritten.
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDir } from '../ckpt/io.js';
import { withFileLock } from './file-lock.js';
import type { PendingAppend } from './anchor.js';
import { writeHead } from './head.js';
import { type LedgerEntry, type LedgerFields, ZERO_HASH, formatLine, hashLine, parseLine, splitLines } from './format.js';

export * from './format.js';
export { verifyLedger, type LedgerVerifyResult, type VerifyLedgerOptions } from './verify.js';
export { withFileLock } from './file-lock.js';
export { readHead, type LedgerHead } from './head.js';

export interface AppendOptions {
  /** runs under the lock with the line about to be written, before it is (the store anchor) */
  beforeAppend?: (next: PendingAppend) => Promise<void>;
}

/** Appends one entry (seq and prev computed under the lock), fsyncs, and returns it. */
export async function appendLedger<T extends string>(
  ledgerPath: string,
  type: T,
  fields: LedgerFields<T>,
  opts: AppendOptions = {},
): Promise<LedgerEntry> {
  await mkdir(dirname(ledgerPath), { recursive: true });
  return withFileLock(`${ledgerPath}.lock`, async () => {
    const fh = await open(ledgerPath, 'a+');
    try {
      const created = (await fh.stat()).size === 0;
      const last = await readLastLine(fh, ledgerPath);
      let seq = 1;
      let prev = ZERO_HASH;
      if (last) {
        const entry = parseLine(last);
        if (typeof entry === 'string') throw new Error(`ledger ${ledgerPath}: last line is corrupt (${entry}); not appending`);
        seq = entry.seq + 1;
        prev = hashLine(last);
      }
      const line = formatLine(seq, new Date().toISOString(), type, fields, prev);
      await opts.beforeAppend?.({ ledgerPath, seq, line, last });
      await fh.write(`${line}\n`);
      await fh.sync();
      if (created) await fsyncDir(dirname(ledgerPath));
      await writeHead(ledgerPath, { seq, sha256: hashLine(line) });
      return JSON.parse(line) as LedgerEntry;
    } finally {
      await fh.close();
    }
  });
}

/** The last line's bytes (without its newline), reading only the file's tail; null if empty. */
async function readLastLine(fh: FileHandle, where: string): Promise<Buffer | null> {
  const size = (await fh.stat()).size;
  if (size === 0) return null;
  const lastByte = Buffer.alloc(1);
  await fh.read(lastByte, 0, 1, size - 1);
  if (lastByte[0] !== 0x0a) {
    throw new Error(`ledger ${where}: last line is incomplete (no newline; an append was cut off); run verify, not appending`);
  }
  const end = size - 1; // the final newline
  let chunks: Buffer[] = [];
  let pos = end;
  while (pos > 0) {
    const len = Math.min(64 * 1024, pos);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos - len);
    const nl = buf.lastIndexOf(0x0a);
    if (nl !== -1) {
      chunks = [buf.subarray(nl + 1), ...chunks];
      return Buffer.concat(chunks);
    }
    chunks = [buf, ...chunks];
    pos -= len;
  }
  return Buffer.concat(chunks);
}

/** All entries, parsed without verifying the chain (use verifyLedger for that); [] if missing. */
export async function readLedger(ledgerPath: string): Promise<LedgerEntry[]> {
  let data: Buffer;
  try {
    data = await readFile(ledgerPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return splitLines(data).lines.flatMap((line, i) => {
    const entry = parseLine(line);
    if (typeof entry === 'string') throw new Error(`ledger ${ledgerPath}: line ${i + 1}: ${entry}`);
    return [entry];
  });
}
