// V8 code cache files for the cached verbs (see run-cached.ts). A cache is used only when it was
// written for this very bundle by this very node: V8 checks its own version and flags, but not
// the bytes it is given, and a damaged cache must cost a recompile, never a crash. So each file
// starts with a SHA-256 over the bundle's identity and the cache bytes; anything that does not
// match is ignored and written anew.
import { createHash } from 'node:crypto';

const DIGEST_BYTES = 32;

/** What a cache belongs to: the bundle as built (size, mtime, inode) and the node that compiled it. */
export function bundleIdentity(stat: { size: number; mtimeMs: number; ino: number }): string {
  return `${stat.size}:${stat.mtimeMs}:${stat.ino}:${process.version}:${process.arch}`;
}

function digest(identity: string, data: Uint8Array): Buffer {
  return createHash('sha256').update(identity).update('\0').update(data).digest();
}

/** The bytes of a cache file: the digest, then V8's cached data. */
export function sealCache(identity: string, data: Uint8Array): Buffer {
  return Buffer.concat([digest(identity, data), data]);
}

/** V8's cached data from a cache file's bytes, or null when it is for another bundle or damaged. */
export function openCache(identity: string, file: Buffer): Buffer | null {
  if (file.length <= DIGEST_BYTES) return null;
  const data = file.subarray(DIGEST_BYTES);
  return digest(identity, data).equals(file.subarray(0, DIGEST_BYTES)) ? data : null;
}
