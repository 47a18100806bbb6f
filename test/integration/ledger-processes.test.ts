// The ledger with other processes and a real disk: concurrent appenders in separate processes,
// a lock left by a dead process, and appends on a full tmpfs (root only).
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withFileLock } from '../../scripts/lib/ledger/file-lock.js';
import { appendLedger, readLedger } from '../../scripts/lib/ledger/ledger.js';
import { verifyLedger } from '../../scripts/lib/ledger/verify.js';
import { mountTmpfs, tmpfsProblem, unmountTmpfs } from '../helpers/tmpfs.js';

const REPO = resolve(import.meta.dirname, '../..');
const LEDGER_MODULE = join(REPO, 'scripts/lib/ledger/ledger.ts');

let root: string;
let ledger: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sy-ledger-'));
  ledger = join(root, 'runs', 'ledger.jsonl');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('concurrency', () => {
  it('4 processes appending 50 entries each give one valid chain of 200', { timeout: 120_000 }, async () => {
    const script = join(root, 'appender.mjs');
    await writeFile(
      script,
      `import { appendLedger } from ${JSON.stringify(pathToFileURL(LEDGER_MODULE).href)};
const [ledger, who] = process.argv.slice(2);
for (let i = 0; i < 50; i++) await appendLedger(ledger, 'test.append', { who, i });
`,
    );
    await Promise.all(['a', 'b', 'c', 'd'].map((who) => runNode([script, ledger, who])));
    expect(await verifyLedger(ledger)).toEqual({ ok: true, entries: 200 });
    const entries = await readLedger(ledger);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    for (const who of ['a', 'b', 'c', 'd']) {
      expect(entries.filter((e) => e.who === who).map((e) => e.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    }
  });
});

describe('withFileLock', () => {
  const lock = () => join(root, 'x.lock');

  it('breaks a lock whose pid is dead, or that is older than staleMs', async () => {
    const dead = await deadPid();
    await writeFile(lock(), JSON.stringify({ pid: dead, host: hostname(), time: 'then', token: 't' }));
    expect(await withFileLock(lock(), async () => 'got it', { timeoutMs: 2000 })).toBe('got it');
    await writeFile(lock(), JSON.stringify({ pid: process.pid, host: 'elsewhere', time: 'then', token: 't' }));
    const old = new Date(Date.now() - 60_000);
    await utimes(lock(), old, old);
    expect(await withFileLock(lock(), async () => 'again', { timeoutMs: 2000 })).toBe('again');
  });

  it('lets one waiter at a time in when several find a dead holder, a dead breaker among them', async () => {
    const dead = await deadPid();
    const deadLock = JSON.stringify({ pid: dead, host: hostname(), time: 'then', token: 't' });
    let inside = 0;
    let most = 0;
    for (let round = 0; round < 60; round++) {
      await writeFile(lock(), deadLock);
      // every third round, a breaker that died mid-break left its turn behind
      if (round % 3 === 0) await writeFile(`${lock()}.break`, deadLock);
      await Promise.all(
        Array.from({ length: 6 }, () =>
          withFileLock(
            lock(),
            async () => {
              most = Math.max(most, ++inside);
              await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
              inside--;
            },
            { timeoutMs: 10_000 },
          ),
        ),
      );
    }
    expect(most).toBe(1);
  });

  it('never breaks a live holder on this host, however old its lock', async () => {
    await writeFile(lock(), JSON.stringify({ pid: process.pid, start: null, host: hostname(), time: 'then', token: 'live' }));
    const old = new Date(Date.now() - 60_000);
    await utimes(lock(), old, old);
    await expect(withFileLock(lock(), async () => 'taken', { staleMs: 100, timeoutMs: 500 })).rejects.toThrow(`held by pid ${process.pid}`);
  });
});

function runNode(args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res() : rej(new Error(`exit ${code}: ${err}`))));
  });
}

/** The pid of a process that has exited. */
function deadPid(): Promise<number> {
  return new Promise((res) => {
    const child = spawn(process.execPath, ['-e', '0']);
    child.on('close', () => res(child.pid!));
  });
}

const noMount = tmpfsProblem();
if (noMount) console.warn(`full-disk ledger tests skipped: ${noMount}`);

describe.skipIf(noMount !== null)('a ledger on a full disk', () => {
  let disk: string;
  beforeEach(async () => {
    disk = join(root, 'disk');
    await mkdir(disk);
    mountTmpfs(disk, 'size=16k');
    ledger = join(disk, 'ledger.jsonl');
  });
  afterEach(() => unmountTmpfs(disk));

  // 16 KiB is four pages: the ledger and its head take one each, the lock one while it is held.
  const diskFull = /^ledger \S+ledger\.jsonl: no space left on device \(\d+(\.\d)? [KM]?B free\); free space, then run the same command again/;

  it('an entry that fits only in part is cut back off: one line of error, every line whole', async () => {
    await appendLedger(ledger, 'x', { n: 0 });
    await expect(appendLedger(ledger, 'x', { n: 1, pad: 'p'.repeat(10_000) })).rejects.toThrow(diskFull);
    expect((await readFile(ledger)).at(-1)).toBe(0x0a);
    expect(await verifyLedger(ledger)).toEqual({ ok: true, entries: 1 });
    expect(await readdir(disk)).toEqual(['ledger.jsonl', 'ledger.jsonl.head']);
    expect(await appendLedger(ledger, 'x', { n: 2 })).toMatchObject({ seq: 2 });
  });

  it('a lock that cannot be written is not left behind to hold up the next append', async () => {
    await appendLedger(ledger, 'x', { n: 0 });
    const filler = join(disk, 'filler');
    await writeFile(filler, Buffer.alloc(8192, 'f')); // the last two pages
    await expect(appendLedger(ledger, 'x', { n: 1 })).rejects.toThrow(diskFull);
    expect(await readdir(disk)).toEqual(['filler', 'ledger.jsonl', 'ledger.jsonl.head']);
    await rm(filler);
    const t0 = Date.now();
    expect(await appendLedger(ledger, 'x', { n: 2 })).toMatchObject({ seq: 2 });
    expect(Date.now() - t0).toBeLessThan(5_000); // no stale lock to wait out
  });
});
