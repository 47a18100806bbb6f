// A ledger emptied, with its head, while the store anchors it: like a deleted one, only the
// anchor naming its file is left to tell.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { anchorBeforeAppend } from '../../scripts/lib/ledger/anchor.js';
import { appendLedger } from '../../scripts/lib/ledger/ledger.js';
import { verifyLedger } from '../../scripts/lib/ledger/verify.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

let root: string;
let ledger: string;
let store: FileStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sy-replaced-'));
  ledger = join(root, 'ledger.jsonl');
  store = new FileStore(`file://${root}/store`, join(root, 'store'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const append = (i: number) => appendLedger(ledger, 'test.entry', { i }, { beforeAppend: anchorBeforeAppend(store, null) });
const verify = () => verifyLedger(ledger, { anchor: { store, key: null } });

describe('a ledger replaced in its file', () => {
  it('emptied with its head deleted fails while the store anchors it', async () => {
    await append(1);
    await append(2);
    await writeFile(ledger, '');
    await rm(`${ledger}.head`);
    expect(await verify()).toMatchObject({ ok: false, firstBad: { line: 1, reason: expect.stringMatching(/store anchors a ledger kept in this file/) } });
  });

  it('an empty ledger left by a first append cut off after its anchor still verifies, and the next append goes on', async () => {
    const anchor = anchorBeforeAppend(store, null);
    const crash = appendLedger(ledger, 'test.entry', { i: 1 }, { beforeAppend: async (p) => {
      await anchor(p);
      throw new Error('killed between the anchor and the line');
    } });
    await expect(crash).rejects.toThrow(/killed/);
    expect(await verify()).toEqual({ ok: true, entries: 0 });
    await append(1);
    expect(await verify()).toMatchObject({ ok: true, entries: 1 });
  });
});
