// The ledger's head: seq and hash of its newest line, kept beside it (`<ledger>.head`).
// The chain proves every line but the last and cannot see lines cut off the end; checked
// against the head, verify notices both.
import { readFile, rename, writeFile } from 'node:fs/promises';

export interface LedgerHead {
  seq: number;
  sha256: string;
}

const headPath = (ledgerPath: string) => `${ledgerPath}.head`;

export async function writeHead(ledgerPath: string, head: LedgerHead): Promise<void> {
  const tmp = `${headPath(ledgerPath)}.tmp`;
  await writeFile(tmp, JSON.stringify(head) + '\n');
  await rename(tmp, headPath(ledgerPath));
}

export async function readHead(ledgerPath: string): Promise<LedgerHead | null> {
  try {
    return JSON.parse(await readFile(headPath(ledgerPath), 'utf8')) as LedgerHead;
  } catch {
    return null;
  }
}
