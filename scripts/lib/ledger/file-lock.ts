// A cross-process lock: a file created with O_EXCL holding {pid, start, host, time, token}.
// Waiters retry with jittered backoff and break a lock whose holder is gone: on this host, its
// pid is dead or now another process's (start time); from another host, it is older than
// `staleMs`. A live holder on this host is never broken, however long it holds: the ledger it
// guards would get two appends with one seq. Breakers take turns (`<lock>.break`, O_EXCL) and
// look again under it, so one cannot remove a lock another waiter has just taken.
import { randomBytes } from 'node:crypto';
import { open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAlive, processStartTime } from '../process-alive.js';

export interface FileLockOptions {
  /** A lock written on another host (whose holder cannot be asked) is broken once older than this. Default 30 000 ms. */
  staleMs?: number;
  /** Give up waiting after this long. Default 60 000 ms. */
  timeoutMs?: number;
}

interface LockInfo {
  pid: number;
  /** the holder's start time (/proc), so a reused pid is not taken for it */
  start?: string | null;
  host: string;
  time: string;
  token: string;
}

/** A breaker that has not finished in this long died at it: its turn is cleared. */
const BREAKER_STALE_MS = 10_000;

let self: Pick<LockInfo, 'pid' | 'start' | 'host'> | null = null;
/** This process as a lock names it: read once, not on every append. */
function thisProcess(): Pick<LockInfo, 'pid' | 'start' | 'host'> {
  return (self ??= { pid: process.pid, start: processStartTime(process.pid), host: hostname() });
}

/** Runs `fn` while holding the lock file `lockPath` (created next to what it protects). */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const token = await acquire(lockPath, opts.staleMs ?? 30_000, opts.timeoutMs ?? 60_000);
  try {
    return await fn();
  } finally {
    await release(lockPath, token);
  }
}

async function acquire(lockPath: string, staleMs: number, timeoutMs: number): Promise<string> {
  const info: LockInfo = { ...thisProcess(), time: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  const started = Date.now();
  let delay = 2;
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx');
      try {
        await fh.writeFile(JSON.stringify(info));
      } catch (err) {
        // A full disk: an empty lock left here would hold every later waiter for `staleMs`.
        await unlink(lockPath).catch(() => {});
        throw err;
      } finally {
        await fh.close();
      }
      return info.token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readLock(lockPath);
    // Broken, or taken meanwhile: look again at once. Another breaker's turn: wait as for a holder.
    if (holder && isStale(holder, staleMs) && (await breakLock(lockPath, holder.raw))) continue;
    if (Date.now() - started > timeoutMs) {
      const who = holder?.info ? `pid ${holder.info.pid} on ${holder.info.host} since ${holder.info.time}` : 'another process';
      throw new Error(`timed out after ${timeoutMs} ms waiting for lock ${lockPath} held by ${who}`);
    }
    await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
    delay = Math.min(delay * 1.5, 100);
  }
}

/** The lock's raw text, parsed info (null while its creator is still writing it) and age. */
async function readLock(lockPath: string): Promise<{ raw: string; info: LockInfo | null; ageMs: number } | null> {
  try {
    const [raw, st] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    let info: LockInfo | null = null;
    try {
      info = JSON.parse(raw) as LockInfo;
    } catch {
      // Empty or partial: the creator is between open and write (or died there); age decides.
    }
    return { raw, info, ageMs: Date.now() - st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // released meanwhile
    throw err;
  }
}

/** Whether the holder is gone: by its pid on this host, by the lock's age from elsewhere (or while it is still being written). */
function isStale(holder: { info: LockInfo | null; ageMs: number }, staleMs: number): boolean {
  const info = holder.info;
  if (!info || info.host !== thisProcess().host || !Number.isInteger(info.pid)) return holder.ageMs > staleMs;
  return !isAlive(info.pid, info.start ?? null);
}

/**
 * Removes the lock judged stale, if it is still that lock; false when another breaker has the
 * turn. Breakers take turns: without that, a second breaker that judged the same lock stale
 * would remove the one the first has just taken in its place, and two waiters would hold the
 * lock at once.
 */
async function breakLock(lockPath: string, staleRaw: string): Promise<boolean> {
  const turn = `${lockPath}.break`;
  try {
    await writeFile(turn, JSON.stringify({ ...thisProcess(), time: new Date().toISOString(), token: '' }), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return clearDeadBreaker(turn);
    await unlink(turn).catch(() => {}); // created, then the write failed (a full disk): not left to hold every breaker
    throw err;
  }
  try {
    const now = await readFile(lockPath, 'utf8').catch(() => null);
    if (now === staleRaw) await unlink(lockPath).catch(() => {});
  } finally {
    await unlink(turn).catch(() => {});
  }
  return true;
}

/** Clears the turn of a breaker that died while breaking; whether the turn is free now. */
async function clearDeadBreaker(turn: string): Promise<boolean> {
  const breaker = await readLock(turn);
  if (!breaker) return true; // its breaker finished meanwhile
  if (!isStale(breaker, BREAKER_STALE_MS) || (await readFile(turn, 'utf8').catch(() => null)) !== breaker.raw) return false;
  await unlink(turn).catch(() => {});
  return true;
}

async function release(lockPath: string, token: string): Promise<void> {
  const raw = await readFile(lockPath, 'utf8').catch(() => '');
  // Only remove our own lock: if it was broken as stale, someone else may hold it now.
  if (raw.includes(`"token":"${token}"`)) await unlink(lockPath).catch(() => {});
}
