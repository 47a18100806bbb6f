// A cross-process lock: a file created with O_EXCL holding {pid, host, time, token}. Waiters
// retry with jittered backoff and break a lock whose pid is dead (same host) or that is older
// than `staleMs`. Breaking renames the lock aside first and checks it took the stale one, so two
// waiters breaking at once cannot both win.
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';

export interface FileLockOptions {
  /** A lock older than this is broken even if its holder looks alive. Default 30 000 ms. */
  staleMs?: number;
  /** Give up waiting after this long. Default 60 000 ms. */
  timeoutMs?: number;
}

interface LockInfo {
  pid: number;
  host: string;
  time: string;
  token: string;
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
  const info: LockInfo = { pid: process.pid, host: hostname(), time: new Date().toISOString(), token: randomBytes(8).toString('hex') };
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
    if (holder && isStale(holder, staleMs)) {
      await breakLock(lockPath, holder.raw);
      continue;
    }
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

function isStale(holder: { info: LockInfo | null; ageMs: number }, staleMs: number): boolean {
  if (holder.ageMs > staleMs) return true;
  const info = holder.info;
  if (!info || info.host !== hostname() || !Number.isInteger(info.pid)) return false;
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Moves the stale lock aside; if what moved was not the lock judged stale, puts it back. */
async function breakLock(lockPath: string, staleRaw: string): Promise<void> {
  const aside = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else broke or released it
    throw err;
  }
  const moved = await readFile(aside, 'utf8').catch(() => staleRaw);
  if (moved !== staleRaw) {
    // A live holder re-took the lock between our read and the rename: restore it.
    await link(aside, lockPath).catch(() => {});
  }
  await unlink(aside).catch(() => {});
}

async function release(lockPath: string, token: string): Promise<void> {
  const raw = await readFile(lockPath, 'utf8').catch(() => '');
  // Only remove our own lock: if it was broken as stale, someone else may hold it now.
  if (raw.includes(`"token":"${token}"`)) await unlink(lockPath).catch(() => {});
}
