// The ledger's anchor in a (real, file) store: written before each line, it catches what the
// chain and the local head cannot: a line appended with a correct prev, a rewritten chain with
// its head, a forged anchor under a key; and it tells a cut-off append from a removed line.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { anchorBeforeAppend, anchorKey, ledgerId, makeAnchor, writeAnchor, type LedgerAnchor } from '../../scripts/lib/ledger/anchor.js';
import { makeHead } from '../../scripts/lib/ledger/head.js';
import { appendLedger } from '../../scripts/lib/ledger/ledger.js';
import { verifyLedger } from '../../scripts/lib/ledger/verify.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

let root: string;
let ledger: string;
let store: FileStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sy-anchor-'));
  ledger = join(root, 'ledger.jsonl');
  store = new FileStore(`file://${root}/store`, join(root, 'store'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const lines = async () => (await readFile(ledger, 'utf8')).split('\n').slice(0, -1);
const writeLines = (ls: string[]) => writeFile(ledger, ls.map((l) => `${l}\n`).join(''));
const anchorOf = async (): Promise<LedgerAnchor> => JSON.parse((await store.getBytes(anchorKey(ledgerId((await lines())[0]!))))!.toString());

/** Appends n entries through the anchor hook (one hook, as one process). */
async function fill(n: number, key: string | null = null) {
  const opts = { beforeAppend: anchorBeforeAppend(store, key) };
  for (let i = 1; i <= n; i++) await appendLedger(ledger, 'test.entry', { i }, opts);
}
const verify = (key: string | null = null) => verifyLedger(ledger, { anchor: { store, key } });

describe('the store anchor', () => {
  it('follows every append, from any process, and verifies', async () => {
    await fill(5);
    await appendLedger(ledger, 'test.entry', { i: 6 }, { beforeAppend: anchorBeforeAppend(store, null) }); // another process
    const ls = await lines();
    expect(await anchorOf()).toEqual({ ledger: ledgerId(ls[0]!), seq: 6, sha256: sha(ls[5]!), prev: sha(ls[4]!), file: `${hostname()}:${ledger}` });
    expect(await verify()).toMatchObject({ ok: true, entries: 6 });
  });

  it('a line appended with a correct prev and the head moved with it is named, and nothing chains onto it', async () => {
    await fill(4);
    const ls = await lines();
    const forged = JSON.stringify({ seq: 5, ts: 'x', type: 'test.entry', i: 99, prev: sha(ls[3]!) });
    await writeLines([...ls, forged]);
    await writeFile(`${ledger}.head`, JSON.stringify({ seq: 5, sha256: sha(forged) }));
    expect((await verify()).firstBad).toMatchObject({ line: 5, reason: expect.stringMatching(/^line 5 was appended after the newest anchored entry \(line 4, .*\): Switchyard did not write it$/) });
    await expect(appendLedger(ledger, 'test.entry', { i: 6 }, { beforeAppend: anchorBeforeAppend(store, null) })).rejects.toThrow(/line 5 was appended after .*; not appending/);
    expect(await lines()).toHaveLength(5);
  });

  it('a rewritten chain with its local head is named at the anchored line', async () => {
    await fill(6);
    const ls = await lines();
    const out: string[] = [];
    for (const [i, l] of ls.entries()) out.push(JSON.stringify({ ...JSON.parse(l), ...(i === 2 ? { i: 42 } : {}), prev: i ? sha(out[i - 1]!) : '0'.repeat(64) }));
    await writeLines(out);
    await writeFile(`${ledger}.head`, JSON.stringify({ seq: 6, sha256: sha(out[5]!) }));
    expect(await verifyLedger(ledger)).toMatchObject({ ok: true }); // the chain and head alone are fooled
    expect((await verify()).firstBad).toMatchObject({ line: 6, reason: expect.stringMatching(/^line 6 does not match the store anchor .*: the ledger was rewritten at or before it$/) });
  });

  it('an append cut off after its anchor is fine; the same state with the local head moved on is a removed line', async () => {
    await fill(4);
    const ls = await lines();
    await writeLines(ls.slice(0, 3)); // line 4 "never written": the anchor is one ahead
    await writeFile(`${ledger}.head`, JSON.stringify({ seq: 3, sha256: sha(ls[2]!) }));
    expect(await verify()).toMatchObject({ ok: true, entries: 3 });
    await writeFile(`${ledger}.head`, JSON.stringify({ seq: 4, sha256: sha(ls[3]!) }));
    expect((await verify()).firstBad).toMatchObject({ line: 3 });
    await writeFile(`${ledger}.head`, JSON.stringify({ seq: 3, sha256: sha(ls[2]!) }));
    await appendLedger(ledger, 'test.entry', { i: 'after' }, { beforeAppend: anchorBeforeAppend(store, null) });
    expect(await verify()).toMatchObject({ ok: true, entries: 4 });
  });

  it('no anchor for a ledger with lines is named as repairable; lines removed from the end are named', async () => {
    await fill(3);
    await rm(join(root, 'store'), { recursive: true });
    expect(await verify()).toMatchObject({ ok: false, anchorRepairable: true, firstBad: { line: 1, reason: expect.stringMatching(/no anchor for this ledger/) } });
    const ls = await lines();
    await writeAnchor(store, makeAnchor(ledgerId(ls[0]!), 3, sha(ls[2]!), sha(ls[1]!), null, ledger));
    await writeLines(ls.slice(0, 1));
    await rm(`${ledger}.head`);
    expect((await verify()).firstBad).toMatchObject({ line: 1, reason: expect.stringMatching(/the ledger ends at line 1 but the store anchor .* records 3 entries/) });
  });

  it('with a key the anchor carries an HMAC: unsigned is repairable, a wrong one is forgery', async () => {
    await fill(3, 'k1');
    expect((await anchorOf()).hmac).toMatch(/^[0-9a-f]{64}$/);
    expect(await verify('k1')).toMatchObject({ ok: true });
    expect((await verify('k2')).firstBad).toMatchObject({ line: 3, reason: expect.stringMatching(/has a wrong HMAC/) });
    const ls = await lines();
    await writeAnchor(store, makeAnchor(ledgerId(ls[0]!), 3, sha(ls[2]!), sha(ls[1]!), null, ledger));
    expect(await verify('k1')).toMatchObject({ ok: false, anchorRepairable: true, firstBad: { reason: expect.stringMatching(/is not signed but SWITCHYARD_LEDGER_KEY is set/) } });
    await expect(appendLedger(ledger, 'test.entry', {}, { beforeAppend: anchorBeforeAppend(store, 'k1') })).rejects.toThrow(/not signed/);
  });

  it('with a key, a removed last line is named whether its head is deleted or rewritten unsigned, and nothing chains onto it', async () => {
    await fill(3, 'k1');
    const ls = await lines();
    expect(JSON.parse(await readFile(`${ledger}.head`, 'utf8'))).toEqual(makeHead(3, sha(ls[2]!), 'k1'));
    await writeLines(ls.slice(0, 2));
    await rm(`${ledger}.head`);
    const removed = { ok: false, entries: 2, anchorRepairable: true, firstBad: { line: 2, reason: expect.stringMatching(/^line 2: the ledger ends at line 2 but the store anchor .* records 3 entries and no signed local head shows that append was cut off/) } };
    expect(await verify('k1')).toMatchObject(removed);
    await writeFile(`${ledger}.head`, JSON.stringify({ seq: 2, sha256: sha(ls[1]!) })); // line 2's values, unsigned
    expect(await verify('k1')).toMatchObject(removed);
    await writeFile(`${ledger}.head`, JSON.stringify({ ...makeHead(2, sha(ls[1]!), 'k1'), hmac: 'a'.repeat(64) }));
    expect(await verify('k1')).toMatchObject(removed);
    await expect(appendLedger(ledger, 'test.entry', {}, { beforeAppend: anchorBeforeAppend(store, 'k1') })).rejects.toThrow(/records 3 entries .*; not appending/);
    expect(await lines()).toHaveLength(2);
  });

  it('with a key, an append cut off between its anchor and its line still verifies, and the next append goes on', async () => {
    await fill(3, 'k1');
    const anchor = anchorBeforeAppend(store, 'k1');
    const crash = async (next: Parameters<typeof anchor>[0]) => {
      await anchor(next);
      throw new Error('killed after the anchor');
    };
    await expect(appendLedger(ledger, 'test.entry', { i: 4 }, { beforeAppend: crash })).rejects.toThrow(/killed/);
    expect(await anchorOf()).toMatchObject({ seq: 4 });
    expect(await lines()).toHaveLength(3);
    expect(await verify('k1')).toMatchObject({ ok: true, entries: 3 });
    await appendLedger(ledger, 'test.entry', { i: 'after' }, { beforeAppend: anchorBeforeAppend(store, 'k1') });
    expect(await verify('k1')).toMatchObject({ ok: true, entries: 4 });
  });

  it("a ledger deleted with its head fails while the store anchors it; another clone's or machine's anchor does not count", async () => {
    await fill(2);
    const ls = await lines();
    await rm(ledger);
    await rm(`${ledger}.head`);
    expect(await verify()).toMatchObject({ ok: false, entries: 0, firstBad: { line: 1, reason: expect.stringMatching(/^line 1: the ledger and its head are missing but the store anchors a ledger kept in this file \(.*head\.json\)/) } });
    const elsewhere = (file: string | undefined) => writeAnchor(store, { ...makeAnchor(ledgerId(ls[0]!), 2, sha(ls[1]!), sha(ls[0]!), null, ledger), file });
    await elsewhere(`${hostname()}:${join(root, 'another-clone', 'ledger.jsonl')}`);
    expect(await verify()).toEqual({ ok: true, entries: 0 });
    await elsewhere(`another-machine:${ledger}`);
    expect(await verify()).toEqual({ ok: true, entries: 0 });
    await elsewhere(undefined); // written before anchors named their file: nothing says whose it is
    expect(await verify()).toEqual({ ok: true, entries: 0 });
  });
});
