// Local writes that a crash or a full disk never leave half done. A replaced file is written
// beside its target under a temp name, checked for length, fsynced, renamed into place and its
// folder fsynced: readers see the old file or the whole new one. An appended line lands whole
// or not at all. Errors keep their errno code (ENOSPC, EROFS) with the path they concern.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../ckpt/io.js';

/** The suffix of a temp file beside its target: `<name>.tmp-<8 hex>`. */
export const TEMP_NAME = /\.tmp-[0-9a-f]{8}$/;

/**
 * `mkdir -p`, reporting the real cause: a recursive mkdir on a read-only filesystem fails
 * with ENOENT, so a failure is retried one level at a time, which says EROFS.
 */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(dir) === dir) throw err;
    await ensureDir(path.dirname(dir));
    await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

export interface AtomicWriteOptions {
  /**
   * false: whole or absent, but not fsynced. For what a power cut may take back without harm
   * (who holds a lock: its holder died with the power); never for a record or an object.
   */
  durable?: boolean;
}

/** Folders this process made or found: each write costs the filesystem fewer round trips. */
const knownDirs = new Set<string>();

/** ensureDir, once per folder per process (for a folder that nothing removes while it runs). */
export async function ensureDirOnce(dir: string): Promise<void> {
  if (knownDirs.has(dir)) return;
  await ensureDir(dir);
  knownDirs.add(dir);
}

/** A temp name beside `dest`, in a folder that exists. */
async function tempBeside(dest: string): Promise<string> {
  await ensureDirOnce(path.dirname(dest));
  return `${dest}.tmp-${randomBytes(4).toString('hex')}`;
}

/** Checks that `expected` bytes reached the open temp file, then fsyncs it (when durable). */
async function checkAndSync(fh: FileHandle, dest: string, expected: number, durable: boolean): Promise<void> {
  const { size } = await fh.stat();
  if (size !== expected) throw new Error(`${dest}: short write (${size} of ${expected} bytes reached the disk)`);
  if (durable) await fh.sync();
}

/** Renames the finished temp file over `dest`, and makes the rename durable (when durable). */
async function commitTemp(tmp: string, dest: string, durable: boolean): Promise<void> {
  await rename(tmp, dest);
  if (durable) await fsyncDir(path.dirname(dest));
}

/**
 * Runs `attempt` with a temp name beside `dest`, removing the temp file on failure. A folder
 * removed since this process saw it (a discarded run) is made again, once.
 */
async function withTemp<T>(dest: string, attempt: (tmp: string) => Promise<T>): Promise<T> {
  for (let retried = false; ; retried = true) {
    const tmp = await tempBeside(dest);
    try {
      return await attempt(tmp);
    } catch (err) {
      await rm(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !retried) {
        knownDirs.delete(path.dirname(dest)); // made again by the next tempBeside
        continue;
      }
      (err as NodeJS.ErrnoException).path ??= dest;
      throw err;
    }
  }
}

/**
 * Replaces `dest`: `write` fills the temp file and returns how many bytes it wrote; the file
 * on disk must have exactly that many before it is renamed into place.
 */
export function writeAtomically<T extends { size: number }>(dest: string, write: (tmp: string) => Promise<T>, opts: AtomicWriteOptions = {}): Promise<T> {
  const durable = opts.durable ?? true;
  return withTemp(dest, async (tmp) => {
    const result = await write(tmp);
    const fh = await open(tmp, 'r+');
    try {
      await checkAndSync(fh, dest, result.size, durable);
    } finally {
      await fh.close();
    }
    await commitTemp(tmp, dest, durable);
    return result;
  });
}

/** Replaces `dest` with `data` (see writeAtomically), through one open file. */
export function writeFileAtomically(dest: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const durable = opts.durable ?? true;
  return withTemp(dest, async (tmp) => {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(buf);
      await checkAndSync(fh, dest, buf.byteLength, durable);
    } finally {
      await fh.close();
    }
    await commitTemp(tmp, dest, durable);
  });
}

/**
 * Appends `data` to the open file `fd` whole or not at all: a short write is continued, and a
 * failed one (a full disk) is cut back off, so no partial line is ever left behind.
 */
export function appendWhole(fd: number, data: Buffer): void {
  const start = fstatSync(fd).size;
  let done = 0;
  try {
    while (done < data.length) done += writeSync(fd, data, done, data.length - done);
  } catch (err) {
    if (done > 0) ftruncateSync(fd, start);
    throw err;
  }
}

/** appendWhole on the file at `file` (created if missing). */
export function appendFileWhole(file: string, data: Buffer | string): void {
  const fd = openSync(file, 'a');
  try {
    appendWhole(fd, typeof data === 'string' ? Buffer.from(data) : data);
  } catch (err) {
    (err as NodeJS.ErrnoException).path ??= file;
    throw err;
  } finally {
    closeSync(fd);
  }
}
