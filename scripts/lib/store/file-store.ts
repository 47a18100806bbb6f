// The embedded default store: a directory. Objects are written to a temp file beside the
// target, checked for length, fsynced and renamed into place, so neither a crash nor a full
// disk ever leaves a half-written (or empty) object; a full or read-only disk is one line.
// Deleting an object removes the folders it leaves empty, as a bucket has no empty folders.
import { copyFile, open, readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { hashFile, sha256Hex } from '../hash.js';
import { diskError } from '../ui/errors.js';
import { TEMP_NAME, writeAtomically, writeFileAtomically } from './atomic-file.js';
import { checkKey, type Store, type StoredObject } from './store.js';

/**
 * A temp file not written to for this long was left by a writer that died: a live write
 * touches its temp file with every chunk and renames it moments after the last one.
 */
const STALE_TEMP_MS = 10 * 60_000;

/**
 * A path that is not there, or that runs through a file: no object. Any other error (EACCES, EIO)
 * is a folder that cannot be read, never an empty one: a restore takes "missing" for evidence.
 */
const isAbsent = (err: NodeJS.ErrnoException) => err.code === 'ENOENT' || err.code === 'ENOTDIR';

/** `value` when `err` says the path is absent, else `err` thrown. */
const ifAbsent =
  <T>(value: T) =>
  (err: NodeJS.ErrnoException): T => {
    if (isAbsent(err)) return value;
    throw err;
  };

/**
 * Copies `src` to `dest` in the kernel (one call; a reflink where the filesystem has them),
 * then hashes what landed: the hash describes the stored bytes, whatever happened on the way.
 */
async function copyAndHash(src: string, dest: string): Promise<StoredObject> {
  await copyFile(src, dest);
  return hashFile(dest);
}

/**
 * Removes the temp files among `names` (in `dir`) that their writers left behind. Housekeeping
 * only: one that cannot be removed now (a read-only store) is left for a later sweep.
 */
async function sweepStaleTemps(dir: string, names: string[]): Promise<void> {
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const name of names.filter((n) => TEMP_NAME.test(n))) {
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => null);
    if (st && st.mtimeMs < cutoff) await rm(file, { force: true }).catch(() => {});
  }
}

export class FileStore implements Store {
  /** the folders this process has swept of stale temps */
  private readonly swept = new Set<string>();

  constructor(
    readonly url: string,
    readonly dir: string,
  ) {}

  get localDir(): string {
    return this.dir;
  }

  /** The local path of a key: file stores can be read in place. */
  pathOf(key: string): string {
    return path.join(this.dir, checkKey(key));
  }

  locate(key: string): string {
    return path.relative(process.cwd(), this.pathOf(key.replace(/\/$/, ''))) + (key.endsWith('/') ? '/' : '');
  }

  /** Writes one object with `write(dest)`; a full or read-only disk becomes one line naming the store. */
  private async atomically(key: string, write: (dest: string) => Promise<StoredObject>): Promise<StoredObject> {
    const dest = this.pathOf(key);
    try {
      const stored = await write(dest);
      // Temps are left only by a writer that died: one look per folder per process finds them.
      const dir = path.dirname(dest);
      if (!this.swept.has(dir)) {
        this.swept.add(dir);
        await sweepStaleTemps(dir, await readdir(dir).catch(() => []));
      }
      return stored;
    } catch (err) {
      throw diskError(`store ${path.relative(process.cwd(), this.dir) || '.'}`, this.dir, err) ?? err;
    }
  }

  put(key: string, srcPath: string, expected?: StoredObject): Promise<StoredObject> {
    return this.atomically(key, (dest) =>
      writeAtomically(dest, async (tmp) => {
        const stored = await copyAndHash(srcPath, tmp);
        if (expected && (expected.sha256 !== stored.sha256 || expected.size !== stored.size)) {
          throw new Error(`${this.url}/${key}: ${srcPath} does not match its expected SHA-256 (changed since it was hashed)`);
        }
        return stored;
      }),
    );
  }

  putBytes(key: string, data: Buffer | string): Promise<StoredObject> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return this.atomically(key, async (dest) => {
      await writeFileAtomically(dest, buf);
      return { size: buf.length, sha256: sha256Hex(buf) };
    });
  }

  async get(key: string, destPath: string): Promise<StoredObject> {
    return writeAtomically(destPath, (tmp) => copyAndHash(this.pathOf(key), tmp));
  }

  async getBytes(key: string): Promise<Buffer | null> {
    return readFile(this.pathOf(key)).catch(ifAbsent(null));
  }

  /** Opened before it is returned: a missing object is null, and a rename over it later leaves this read on the version opened. */
  async read(key: string, opts: { start?: number } = {}): Promise<AsyncIterable<Buffer> | null> {
    const file = await open(this.pathOf(key), 'r').catch(ifAbsent(null));
    return file?.createReadStream({ start: opts.start ?? 0 }) ?? null;
  }

  async stat(key: string): Promise<StoredObject | null> {
    const file = this.pathOf(key);
    const exists = await stat(file).then((s) => s.isFile(), ifAbsent(false));
    return exists ? hashFile(file) : null;
  }

  /** Keys below `prefix`; temp files of writes in progress are not keys, and stale ones are swept. */
  async list(prefix: string): Promise<string[]> {
    const base = prefix ? this.pathOf(prefix.replace(/\/$/, '')) : this.dir;
    const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(ifAbsent([]));
    const files = entries.filter((e) => e.isFile());
    for (const e of files.filter((f) => TEMP_NAME.test(f.name))) await sweepStaleTemps(e.parentPath, [e.name]);
    return files
      .filter((e) => !TEMP_NAME.test(e.name))
      .map((e) => path.relative(this.dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
      .sort();
  }

  /** Deletes an object, then each folder above it that it leaves empty (up to the store's root). */
  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    await rm(file, { force: true });
    for (let dir = path.dirname(file); dir !== this.dir && dir.startsWith(this.dir + path.sep); dir = path.dirname(dir)) {
      const emptied = await rmdir(dir).then(
        () => true,
        () => false, // not empty (or already gone): the folders above are in use too
      );
      if (!emptied) break;
    }
  }
}
