// Where runs live durably. Keys are POSIX paths below the store root ("runs/<id>/run.json").
// Every write is atomic per object (readers see the old object or the new one, never a
// partial one) and reports the SHA-256 of what was stored, verified against the source.

/** A read whose bytes are unlike what the store recorded for the object: the object is damaged, not the read. */
export class CorruptObject extends Error {}

export interface StoredObject {
  size: number;
  sha256: string;
}

export interface Store {
  readonly url: string;
  /** the folder of a store that is a folder on this machine (readable in place), else null */
  readonly localDir: string | null;
  /**
   * Copies a local file to `key`, verifying the stored bytes' SHA-256. A caller that already
   * knows the file's size and hash (a checkpoint manifest) passes them as `expected`: the bytes
   * are then checked against it as they stream, instead of being read twice.
   */
  put(key: string, srcPath: string, expected?: StoredObject): Promise<StoredObject>;
  putBytes(key: string, data: Buffer | string): Promise<StoredObject>;
  /** Copies `key` to a local file, returning the SHA-256 of the bytes received. */
  get(key: string, destPath: string): Promise<StoredObject>;
  /** The object's bytes, or null when it does not exist. */
  getBytes(key: string): Promise<Buffer | null>;
  /**
   * The object's bytes from `start` on (none when it holds no more), streamed; null when it does
   * not exist. Unverified: a part of an object cannot be checked against the SHA-256 of the
   * whole, so this is for logs that grow, never for checkpoints (those keep `get`). It is open
   * once returned (a file, an HTTP body): iterate it, to its end or until a `break`, which closes it.
   */
  read(key: string, opts?: { start?: number }): Promise<AsyncIterable<Buffer> | null>;
  /** SHA-256 and size of the stored object as it is now, or null when missing. */
  stat(key: string): Promise<StoredObject | null>;
  /** All keys below `prefix` (which ends with "/"), sorted. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Where a key (or a prefix ending in "/") is, for people: a local path or a URL. */
  locate(key: string): string;
}

export function checkKey(key: string): string {
  if (!key || key.startsWith('/') || key.split('/').some((p) => p === '..' || p === '')) {
    throw new Error(`invalid store key: ${JSON.stringify(key)}`);
  }
  return key;
}
