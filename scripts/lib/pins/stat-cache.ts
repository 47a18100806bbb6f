// Stat cache: relative path -> "<size>:<mtimeNs>:<ino> <sha256>". A file whose size, mtime (ns)
// and inode all match its entry is not read again. One string per entry keeps the JSON small
// and quick to parse (10,000 entries in a few ms).
import { readFileSync } from 'node:fs';
import { writeFileAtomically } from '../store/atomic-file.js';

const FORMAT = 'switchyard-statcache/1';
// Timestamps tick coarser than a rewrite can take (the kernel's clock is jiffy-grained, some
// filesystems keep whole seconds), so a file changed within this window of the pin could be
// rewritten later with an identical stat. Such entries are not stored (git's "racy" rule).
const RACY_WINDOW_NS = 2_000_000_000n;

interface CacheFile {
  format: typeof FORMAT;
  /** Real path of the data directory the entries belong to. */
  root: string;
  /** Merkle root of exactly these entries (absent when the last pin had unstored files). */
  merkle?: string;
  entries: Record<string, string>;
}

/** A file to keep: either its current entry (a hit) or what a fresh hash found. */
export type StatEntry =
  | { rel: string; entry: string }
  /** sha256 undefined: the file changed while being read; leave it out. */
  | { rel: string; key: string; mtimeNs: bigint; sha256: string | undefined };

export class StatCache {
  private constructor(
    private readonly file: string | undefined,
    private readonly root: string,
    private readonly entries: Record<string, string>,
    /** Entry count of the loaded cache. */
    readonly size: number,
    /** Merkle root over exactly the loaded entries, if known. */
    readonly merkle: string | undefined,
  ) {}

  /** Loads `file` if it exists and belongs to `root`; anything unreadable counts as empty. */
  static load(file: string | undefined, root: string): StatCache {
    if (file) {
      try {
        const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<CacheFile>;
        if (data.format === FORMAT && data.root === root && data.entries && typeof data.entries === 'object') {
          const merkle = typeof data.merkle === 'string' ? data.merkle : undefined;
          return new StatCache(file, root, data.entries, Object.keys(data.entries).length, merkle);
        }
      } catch {
        // missing or corrupt: start empty, it will be rewritten
      }
    }
    return new StatCache(file, root, Object.create(null), 0, undefined);
  }

  static keyOf(st: { size: bigint; mtimeNs: bigint; ino: bigint }): string {
    return `${st.size}:${st.mtimeNs}:${st.ino}`;
  }

  /** The cached sha256 for `rel` if its entry matches `key` exactly. */
  get(rel: string, key: string): string | undefined {
    if (!Object.hasOwn(this.entries, rel)) return undefined;
    const e = this.entries[rel];
    if (typeof e !== 'string' || e.length !== key.length + 65 || !e.startsWith(key) || e[key.length] !== ' ') {
      return undefined;
    }
    return e.slice(key.length + 1);
  }

  /** The stored entry for `rel`, to carry a hit over into save(). */
  entry(rel: string): string {
    return this.entries[rel]!;
  }

  /**
   * Replaces the cache with `seen` (atomically), leaving out files modified too
   * recently to trust their stat. `merkle` is kept only if no file was left out.
   */
  async save(seen: readonly StatEntry[], merkle: string): Promise<void> {
    if (!this.file) return;
    const racyAfter = BigInt(Date.now()) * 1_000_000n - RACY_WINDOW_NS;
    const entries: Record<string, string> = Object.create(null);
    let stored = 0;
    for (const e of seen) {
      if ('entry' in e) entries[e.rel] = e.entry;
      else if (e.sha256 !== undefined && e.mtimeNs < racyAfter) entries[e.rel] = `${e.key} ${e.sha256}`;
      else continue;
      stored++;
    }
    const data: CacheFile = { format: FORMAT, root: this.root, entries };
    if (stored === seen.length) data.merkle = merkle;
    await writeFileAtomically(this.file, JSON.stringify(data));
  }
}
