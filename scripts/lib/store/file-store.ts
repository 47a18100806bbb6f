// The embedded default store: a directory. Objects are written to a temp file beside the
// target and renamed into place, so a crash never leaves a half-written object.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { hashFile } from '../hash.js';
import { writeAtomically } from './atomic-file.js';
import { checkKey, type Store, type StoredObject } from './store.js';

function hashingCopy(src: string, dest: string): Promise<StoredObject> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  const out = createWriteStream(dest, { flush: true });
  return pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), tap, out).then(() => ({
    size,
    sha256: hash.digest('hex'),
  }));
}

export class FileStore implements Store {
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

  private async atomically(key: string, write: (tmp: string) => Promise<StoredObject>): Promise<StoredObject> {
    return writeAtomically(this.pathOf(key), write);
  }

  put(key: string, srcPath: string, expected?: StoredObject): Promise<StoredObject> {
    return this.atomically(key, async (tmp) => {
      const copied = await hashingCopy(srcPath, tmp);
      const stored = await hashFile(tmp);
      if (stored.sha256 !== copied.sha256) throw new Error(`${this.url}/${key}: stored bytes do not match the source`);
      if (expected && (expected.sha256 !== stored.sha256 || expected.size !== stored.size)) {
        throw new Error(`${this.url}/${key}: ${srcPath} does not match its expected SHA-256 (changed since it was hashed)`);
      }
      return stored;
    });
  }

  putBytes(key: string, data: Buffer | string): Promise<StoredObject> {
    return this.atomically(key, async (tmp) => {
      const out = createWriteStream(tmp, { flush: true });
      await new Promise<void>((resolve, reject) => out.on('error', reject).end(data, resolve));
      return hashFile(tmp);
    });
  }

  async get(key: string, destPath: string): Promise<StoredObject> {
    return writeAtomically(destPath, (tmp) => hashingCopy(this.pathOf(key), tmp));
  }

  async getBytes(key: string): Promise<Buffer | null> {
    return readFile(this.pathOf(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
  }

  async stat(key: string): Promise<StoredObject | null> {
    const file = this.pathOf(key);
    const exists = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    return exists ? hashFile(file) : null;
  }

  async list(prefix: string): Promise<string[]> {
    const base = prefix ? this.pathOf(prefix.replace(/\/$/, '')) : this.dir;
    const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
      .filter((e) => e.isFile() && !/\.tmp-[0-9a-f]{8}$/.test(e.name))
      .map((e) => path.relative(this.dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
      .sort();
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}
