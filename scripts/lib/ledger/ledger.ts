// The run ledger: an append-only, hash-chained JSONL file. Appends from several processes are
// serialized by a lock file next to it (`<ledger>.lock`); each line lands whole or not at all.
// The one change ever made to written bytes is the repair of a torn last line (an append cut
// off by a crash): those bytes move to a recovery file beside the ledger and the repair is
// recorded as a normal entry, so the chain and its head stay valid.
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../ckpt/io.js';
import { appendWhole, ensureDirOnce, writeFileAtomically } from '../store/atomic-file.js';
import { diskError, UserError } from '../ui/errors.js';
import { withFileLock } from './file-lock.js';
import type { AppendHook, PendingAppend } from './anchor.js';
import { makeHead, writeHead } from './head.js';
import { type LedgerEntry, type LedgerFields, ZERO_HASH, formatLine, hashLine, parseLine, splitLines } from './format.js';

export * from './format.js';
export { withFileLock } from './file-lock.js';
export { readHead, type LedgerHead } from './head.js';

export interface AppendOptions {
  /**
   * Runs under the lock with the line about to be written, before it is (the store anchor);
   * it names the key the local head is signed with.
   */
  beforeAppend?: AppendHook;
}

/**
 * Appends one entry (seq and prev computed under the lock), fsyncs, and returns it. A torn last
 * line is repaired first; a full or read-only disk is one line naming the ledger.
 */
export async function appendLedger<T extends string>(
  ledgerPath: string,
  type: T,
  fields: LedgerFields<T>,
  opts: AppendOptions = {},
): Promise<LedgerEntry> {
  const where = `ledger ${path.relative(process.cwd(), ledgerPath)}`;
  try {
    await ensureDirOnce(path.dirname(ledgerPath));
    return await withFileLock(`${ledgerPath}.lock`, async () => {
      const fh = await open(ledgerPath, 'a+');
      try {
        const created = (await fh.stat()).size === 0;
        let { last, tornAt } = await readTail(fh);
        let headKey: string | null = null;
        const before = async (next: Omit<PendingAppend, 'ledgerPath'>) => {
          headKey = (await opts.beforeAppend?.({ ledgerPath, ...next }))?.headKey ?? null;
        };
        if (tornAt !== null) {
          const repaired = await moveTornTail(fh, ledgerPath, tornAt);
          last = Buffer.from(await appendLine(fh, where, last, 'ledger.repaired', repaired, before));
          process.stderr.write(
            `switchyard: ${where}: its last line was cut off (${repaired.bytes} bytes of an interrupted append); moved them to ${repaired.recovery} and recorded the repair\n`,
          );
        }
        const line = await appendLine(fh, where, last, type, fields, before);
        if (created) await fsyncDir(path.dirname(ledgerPath));
        const entry = JSON.parse(line) as LedgerEntry;
        await writeHead(ledgerPath, makeHead(entry.seq, hashLine(line), headKey));
        return entry;
      } finally {
        await fh.close();
      }
    });
  } catch (err) {
    throw diskError(where, path.dirname(ledgerPath), err) ?? err;
  }
}

/**
 * Appends the entry that follows `last` (whole or not at all), fsyncs, and returns its line;
 * `before` sees the line first (the store anchor is written ahead of it).
 */
async function appendLine(
  fh: FileHandle,
  where: string,
  last: Buffer | null,
  type: string,
  fields: object,
  before: (next: Omit<PendingAppend, 'ledgerPath'>) => Promise<void>,
): Promise<string> {
  let seq = 1;
  let prev = ZERO_HASH;
  if (last) {
    const entry = parseLine(last);
    if (typeof entry === 'string') throw new UserError(`${where}: its last line is not a ledger entry (${entry}); make verify names what is wrong`);
    seq = entry.seq + 1;
    prev = hashLine(last);
  }
  const line = formatLine(seq, new Date().toISOString(), type, fields, prev);
  await before({ seq, line, last });
  appendWhole(fh.fd, Buffer.from(`${line}\n`));
  await fh.sync();
  return line;
}

/**
 * Copies the bytes after the last newline into `<ledger>.torn-<time>` (durably), then cuts them
 * off the ledger. Returns the fields of the `ledger.repaired` entry.
 */
async function moveTornTail(fh: FileHandle, ledgerPath: string, tornAt: number): Promise<{ recovery: string; bytes: number; sha256: string }> {
  const torn = await readRange(fh, tornAt, (await fh.stat()).size);
  const recovery = `${ledgerPath}.torn-${new Date().toISOString().replace(/[-:.]/g, '')}`;
  await writeFileAtomically(recovery, torn);
  await fh.truncate(tornAt);
  await fh.sync();
  return { recovery: path.basename(recovery), bytes: torn.length, sha256: hashLine(torn) };
}

/**
 * The last complete line (without its newline; null if there is none), and where a torn tail
 * starts when the file does not end with a newline (null when it does), reading only the end.
 */
async function readTail(fh: FileHandle): Promise<{ last: Buffer | null; tornAt: number | null }> {
  const size = (await fh.stat()).size;
  const nl = await lastNewline(fh, size);
  const tornAt = nl + 1 < size ? nl + 1 : null;
  if (nl === -1) return { last: null, tornAt };
  return { last: await readRange(fh, (await lastNewline(fh, nl)) + 1, nl), tornAt };
}

/** The offset of the last newline before `end`, or -1: read backwards in 64 KiB chunks. */
async function lastNewline(fh: FileHandle, end: number): Promise<number> {
  const buf = Buffer.alloc(64 * 1024);
  for (let pos = end; pos > 0; ) {
    const len = Math.min(buf.length, pos);
    await fh.read(buf, 0, len, pos - len);
    const nl = buf.subarray(0, len).lastIndexOf(0x0a);
    if (nl !== -1) return pos - len + nl;
    pos -= len;
  }
  return -1;
}

async function readRange(fh: FileHandle, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.alloc(end - start);
  await fh.read(buf, 0, buf.length, start);
  return buf;
}

/**
 * All entries, parsed without verifying the chain (use verifyLedger for that); [] if missing.
 * A torn last line is not an entry (the next append repairs it) and is skipped.
 */
export async function readLedger(ledgerPath: string): Promise<LedgerEntry[]> {
  let data: Buffer;
  try {
    data = await readFile(ledgerPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const { lines, complete } = splitLines(data);
  return (complete ? lines : lines.slice(0, -1)).flatMap((line, i) => {
    const entry = parseLine(line);
    if (typeof entry === 'string') throw new Error(`ledger ${ledgerPath}: line ${i + 1}: ${entry}`);
    return [entry];
  });
}
