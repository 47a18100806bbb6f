// Local writes that a crash or a full disk never leave half done. A replaced file is written
// beside its target under a temp name, checked for length, fsynced, renamed into place and its
// folder fsynced: readers see the old file or the whole new one. An appended line lands whole
// or not at all. Errors keep their errno code (ENOSPC, EROFS) with the path they concern.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
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

/**
 * Replaces `dest`: `write` fills the temp file and returns how many bytes it wrote; the file
 * on disk must have exactly that many before it is renamed into place.
 */
export async function writeAtomically<T extends { size: number }>(dest: string, write: (tmp: string) => Promise<T>, opts: AtomicWriteOptions = {}): Promise<T> {
  const durable = opts.durable ?? true;
  await ensureDir(path.dirname(dest));
  const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    const result = await write(tmp);
    const fh = await open(tmp, 'r+');
    try {
      const { size } = await fh.stat();
      if (size !== result.size) throw new Error(`${dest}: short write (${size} of ${result.size} bytes reached the disk)`);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
    if (durable) await fsyncDir(path.dirname(dest));
    return result;
  } catch (err) {
    await rm(tmp, { force: true });
    (err as NodeJS.ErrnoException).path ??= dest;
    throw err;
  }
}

/** Replaces `dest` with `data` (see writeAtomically). */
export async function writeFileAtomically(dest: string, data: Uint8Array | string, opts?: AtomicWriteOptions): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  await writeAtomically(
    dest,
    async (tmp) => {
      await writeFile(tmp, buf);
      return { size: buf.byteLength };
    },
    opts,
  );
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
