import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withFileLock } from '../../scripts/lib/ledger/file-lock.js';
import { type LedgerEntry, ZERO_HASH, appendLedger, hashLine, readLedger } from '../../scripts/lib/ledger/ledger.js';
import { verifyLedger } from '../../scripts/lib/ledger/verify.js';
import { processStartTime } from '../../scripts/lib/process-alive.js';

let root: string;
let ledger: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sy-ledger-'));
  ledger = join(root, 'runs', 'ledger.jsonl');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** n entries cycling through the known types. */
async function fill(n: number): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  for (let i = 1; i <= n; i++) {
    if (i % 3 === 0) out.push(await appendLedger(ledger, 'ckpt.committed', { run_id: 'r1', step: i, manifest: `runs/r1/ckpt/${i}/manifest.json`, manifest_sha256: 'a'.repeat(64) }));
    else if (i % 3 === 1) out.push(await appendLedger(ledger, 'attempt.started', { run_id: 'r1', attempt: i, backend: 'local' }));
    else out.push(await appendLedger(ledger, 'custom.note', { run_id: 'r1', text: `note ${i} ünïcödé` }));
  }
  return out;
}

async function lines(): Promise<string[]> {
  return (await readFile(ledger, 'utf8')).split('\n').slice(0, -1);
}
async function writeLines(ls: string[]) {
  await writeFile(ledger, ls.map((l) => `${l}\n`).join(''));
}

describe('append and verify', () => {
  it('chains many entries, keys in order, and verifies', async () => {
    const entries = await fill(120);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    const ls = await lines();
    expect(ls[0]).toMatch(/^\{"seq":1,"ts":"[^"]+Z","type":"attempt.started","run_id":"r1","attempt":1,"backend":"local","prev":"0{64}"\}$/);
    expect(entries[0]!.prev).toBe(ZERO_HASH);
    for (let i = 1; i < ls.length; i++) expect(entries[i]!.prev).toBe(hashLine(ls[i - 1]!));
    expect(await verifyLedger(ledger)).toEqual({ ok: true, entries: 120 });
    expect(await readLedger(ledger)).toEqual(entries);
  });

  it('a missing ledger is ok and empty; reserved field names are refused', async () => {
    expect(await verifyLedger(join(root, 'nope.jsonl'))).toEqual({ ok: true, entries: 0 });
    expect(await readLedger(join(root, 'nope.jsonl'))).toEqual([]);
    await expect(appendLedger(ledger, 'x', { seq: 5 })).rejects.toThrow(/"seq" is reserved/);
  });

  it('chains through lines longer than the tail read chunk', async () => {
    await appendLedger(ledger, 'outputs.saved', { run_id: 'r', files: Array.from({ length: 3000 }, (_, i) => ({ path: `out/${i}.bin`, sha256: 'b'.repeat(64) })) });
    await appendLedger(ledger, 'ckpt.pruned', { run_id: 'r', step: 1 });
    expect((await stat(ledger)).size).toBeGreaterThan(200_000);
    expect(await verifyLedger(ledger)).toEqual({ ok: true, entries: 2 });
  });
});

describe('tampering is detected and located', () => {
  it('one character edited in a middle line names that line', async () => {
    await fill(40);
    const ls = await lines();
    ls[19] = ls[19]!.replace('"run_id":"r1"', '"run_id":"r2"');
    await writeLines(ls);
    const res = await verifyLedger(ledger);
    expect(res).toMatchObject({ ok: false, entries: 40, firstBad: { line: 20 } });
    expect(res.firstBad!.reason).toBe('line 20 was edited: its hash no longer matches the prev recorded in line 21');
  });

  it("an edited prev field names the line whose prev it is", async () => {
    await fill(40);
    const ls = await lines();
    ls[9] = ls[9]!.replace(/"prev":"(.)/, (_, c: string) => `"prev":"${c === 'f' ? 'e' : 'f'}`);
    await writeLines(ls);
    expect((await verifyLedger(ledger)).firstBad).toEqual({
      line: 10,
      reason: "line 10 was edited: its prev does not match line 9 and its hash does not match line 11's prev",
    });
  });

  it('an edit that breaks the JSON, or changes seq, names that line', async () => {
    await fill(10);
    const ls = await lines();
    await writeLines(ls.map((l, i) => (i === 4 ? l.slice(1) : l)));
    expect((await verifyLedger(ledger)).firstBad).toMatchObject({ line: 5, reason: expect.stringMatching(/^line 5: not valid JSON/) });
    await writeLines(ls.map((l, i) => (i === 4 ? l.replace('"seq":5', '"seq":6') : l)));
    expect((await verifyLedger(ledger)).firstBad).toMatchObject({ line: 5, reason: expect.stringMatching(/^line 5: seq is 6, expected 5/) });
  });

  it('a deleted line is named', async () => {
    await fill(30);
    const ls = await lines();
    ls.splice(14, 1);
    await writeLines(ls);
    const res = await verifyLedger(ledger);
    expect(res).toMatchObject({ ok: false, entries: 29, firstBad: { line: 15 } });
    expect(res.firstBad!.reason).toBe('line 15: seq is 16, expected 15 (a line before it was removed, or seq was edited)');
  });

  it('a truncated last line is named by verify; the next append moves it aside, records the repair and says so once', async () => {
    await fill(12);
    const before = await readFile(ledger);
    await truncate(ledger, before.length - 10);
    expect((await verifyLedger(ledger)).firstBad).toEqual({
      line: 12,
      reason: 'line 12: truncated last line (no newline at the end; an append was cut off)',
    });
    expect(await readLedger(ledger)).toHaveLength(11);
    const torn = before.subarray(before.lastIndexOf(0x0a, before.length - 2) + 1, before.length - 10);

    const said = captureStderr();
    try {
      await appendLedger(ledger, 'x', { n: 1 });
      await appendLedger(ledger, 'x', { n: 2 });
    } finally {
      said.restore();
    }
    expect(said.lines).toEqual([
      expect.stringMatching(/^switchyard: ledger \S+ledger\.jsonl: its last line was cut off \(\d+ bytes of an interrupted append\); moved them to ledger\.jsonl\.torn-\d{8}T\d{9}Z and recorded the repair$/),
    ]);
    const recovery = (await readdir(join(root, 'runs'))).filter((f) => f.startsWith('ledger.jsonl.torn-'));
    expect(recovery).toHaveLength(1);
    expect((await readFile(join(root, 'runs', recovery[0]!))).equals(torn)).toBe(true);
    const entries = await readLedger(ledger);
    expect(entries.slice(11).map((e) => [e.seq, e.type])).toEqual([[12, 'ledger.repaired'], [13, 'x'], [14, 'x']]);
    expect(entries[11]).toMatchObject({ recovery: recovery[0], bytes: torn.length, sha256: hashLine(torn) });
    expect(await verifyLedger(ledger)).toEqual({ ok: true, entries: 14 });
  });

  it('a ledger that is nothing but a torn line starts over at seq 1', async () => {
    await mkdir(join(root, 'runs'));
    await writeFile(ledger, '{"seq":1,"ts":"2026-');
    const said = captureStderr();
    try {
      expect(await appendLedger(ledger, 'x', {})).toMatchObject({ seq: 2, type: 'x' });
    } finally {
      said.restore();
    }
    expect((await readLedger(ledger)).map((e) => [e.seq, e.type, e.prev === ZERO_HASH])).toEqual([[1, 'ledger.repaired', true], [2, 'x', false]]);
    expect(await verifyLedger(ledger)).toEqual({ ok: true, entries: 2 });
  });

  it('a complete last line that is not an entry is refused in one line, naming make verify', async () => {
    await fill(3);
    await writeFile(ledger, (await readFile(ledger, 'utf8')) + 'not json\n');
    await expect(appendLedger(ledger, 'x', {})).rejects.toThrow(/^ledger \S+: its last line is not a ledger entry \(not valid JSON\); make verify names what is wrong$/);
  });

  it('lines removed from the end, or an edited last line, are caught by the head', async () => {
    await fill(10);
    const ls = await lines();
    await writeLines(ls.slice(0, 7));
    expect((await verifyLedger(ledger)).firstBad).toEqual({
      line: 7,
      reason: 'line 7: the ledger ends at line 7 but its head records 10 entries (lines were removed from the end)',
    });
    await writeLines([...ls.slice(0, 9), ls[9]!.replace('"attempt":10', '"attempt":11')]);
    expect((await verifyLedger(ledger)).firstBad).toEqual({
      line: 10,
      reason: 'line 10 was edited: it no longer matches the hash recorded in the ledger head',
    });
    await rm(ledger);
    expect((await verifyLedger(ledger)).ok).toBe(false);
  });

  it('a head file that is not a seq and a hash is named in one line, not a crash', async () => {
    await fill(3);
    for (const head of ['{}', '{"seq":0}', '{"seq":0,"sha256":"x"}', 'null', '{"seq":2,"sha256":"' + 'a'.repeat(64) + '","hmac":7}']) {
      await writeFile(`${ledger}.head`, `${head}\n`);
      expect(await verifyLedger(ledger)).toEqual({
        ok: false,
        entries: 3,
        firstBad: { line: 3, reason: `line 3: the head file ${ledger}.head was edited or damaged (not a seq and a hash)` },
      });
    }
    await appendLedger(ledger, 'x', {}); // an append writes a good head over it
    expect(await verifyLedger(ledger)).toEqual({ ok: true, entries: 4 });
  });
});

describe('onEntry', () => {
  it('gets every entry of an intact chain, in order; a break is named whatever the lines after it say', async () => {
    await fill(12);
    const seen: number[] = [];
    expect(await verifyLedger(ledger, { onEntry: (e) => seen.push(e.seq) })).toEqual({ ok: true, entries: 12 });
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const ls = await lines();
    await writeLines(ls.map((l, i) => (i === 5 ? l.replace('"step":6', '"step":7') : l)));
    seen.length = 0;
    expect((await verifyLedger(ledger, { onEntry: (e) => seen.push(e.seq) })).firstBad).toEqual({
      line: 6,
      reason: 'line 6 was edited: its hash no longer matches the prev recorded in line 7',
    });
    expect(Math.max(...seen)).toBeLessThan(7);
  });
});

describe('withFileLock', () => {
  const lock = () => join(root, 'x.lock');

  it('serializes holders in one process', async () => {
    let inside = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        withFileLock(lock(), async () => {
          max = Math.max(max, ++inside);
          await new Promise((r) => setTimeout(r, 5));
          inside--;
        }),
      ),
    );
    expect(max).toBe(1);
  });

  it('waits behind another breaker of a stale lock without spinning, and takes the lock once its turn ends', async () => {
    const here = (await import('node:os')).hostname();
    // The holder's pid is this process's, but its start time is not: a pid reused since, so the lock is stale.
    await writeFile(lock(), JSON.stringify({ pid: process.pid, start: 'long ago', host: here, time: 'then', token: 'old' }));
    // A live breaker (this process, rightly started) has the turn for the next half second.
    const turn = `${lock()}.break`;
    await writeFile(turn, JSON.stringify({ pid: process.pid, start: processStartTime(process.pid), host: here, time: 'now', token: '' }));
    setTimeout(() => void unlink(turn), 500);
    const cpu = process.cpuUsage();
    await expect(withFileLock(lock(), async () => 1)).resolves.toBe(1);
    const { user, system } = process.cpuUsage(cpu);
    // Backing off as behind a holder costs a few ms; looking again at once burned the whole wait.
    expect((user + system) / 1000).toBeLessThan(150);
  });

  it('waits for a live holder and times out naming it', async () => {
    await writeFile(lock(), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), time: 'now', token: 't' }));
    await expect(withFileLock(lock(), async () => 1, { timeoutMs: 200 })).rejects.toThrow(new RegExp(`held by pid ${process.pid}`));
  });
});

/** Lines written to stderr until restore(). */
function captureStderr(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    return true;
  }) as typeof process.stderr.write;
  return { lines, restore: () => void (process.stderr.write = write) };
}
