// Stat cache: relative path -> "<size>:<mtimeNs>:<ino> <sha256>". A file whose size, mtime (ns)
// and inode all match its entry is not read again. One string per entry keeps the JSON small
// and quick to parse (10,000 entries in a few ms).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const FORMAT = 'switchyard-statcache/1';
// Timestamps tick coarser than a rewrite can take (the kernel's clock is jiffy-grained, some
// filesystems keep whole seconds), so a file changed within this window of the pin could be
// rewritten later with an identical stat. Such entries are not stored (git's "racy" rule).
const RACY_WINDOW_NS = 2_000_000_000n;

export interface StatKey {
  size: bigint;
  mtimeNs: bigint;
  ino: bigint;
}

interface CacheFile {
  format: typeof FORMAT;
  /** Real path of the data directory the entries belong to. */
  root: string;
  /** Merkle root of exactly these entries, when the last pin had no uncached files. */
  merkle?: string;
  entries: Record<string, string>;
}

export class StatCache {
  private readonly old: Record<string, string>;
  private readonly oldCount: number;
  private readonly next: Record<string, string> = Object.create(null);
  private nextCount = 0;
  private changed = false;
  private readonly racyAfter = BigInt(Date.now()) * 1_000_000n - RACY_WINDOW_NS;

  private constructor(
    private readonly file: string | undefined,
    private readonly root: string,
    old: Record<string, string>,
    private readonly merkle: string | undefined,
  ) {
    this.old = old;
    this.oldCount = Object.keys(old).length;
  }

  /** Loads `file` if it exists and belongs to `root`; anything unreadable counts as empty. */
  static load(file: string | undefined, root: string): StatCache {
    let entries: Record<string, string> = Object.create(null);
    let merkle: string | undefined;
    if (file) {
      try {
        const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<CacheFile>;
        if (data.format === FORMAT && data.root === root && data.entries && typeof data.entries === 'object') {
          entries = data.entries;
          if (typeof data.merkle === 'string') merkle = data.merkle;
        }
      } catch {
        // missing or corrupt: start empty, it will be rewritten
      }
    }
    return new StatCache(file, root, entries, merkle);
  }

  static keyOf(st: StatKey): string {
    return `${st.size}:${st.mtimeNs}:${st.ino}`;
  }

  /** The cached sha256 for `rel` if its entry matches `key` exactly. */
  get(rel: string, key: string): string | undefined {
    if (!Object.hasOwn(this.old, rel)) return undefined;
    const e = this.old[rel];
    if (typeof e !== 'string' || e.length !== key.length + 65 || !e.startsWith(key) || e[key.length] !== ' ') {
      return undefined;
    }
    return e.slice(key.length + 1);
  }

  /** Records the file as seen this run; call once per file, cached or freshly hashed. */
  set(rel: string, key: string, mtimeNs: bigint, sha256: string): void {
    const entry = mtimeNs >= this.racyAfter ? undefined : `${key} ${sha256}`;
    if (entry !== undefined) {
      this.next[rel] = entry;
      this.nextCount++;
    }
    if (!this.changed && (!Object.hasOwn(this.old, rel) || this.old[rel] !== entry)) this.changed = true;
  }

  private unchanged(): boolean {
    return !this.changed && this.nextCount === this.oldCount;
  }

  /**
   * The Merkle root saved last time, valid when every file seen this run matched its entry
   * and none went missing: the (path, size, sha256) set is then the one that root was made
   * from. Skips rebuilding the tree on the warm path.
   */
  unchangedRoot(): string | undefined {
    return this.unchanged() ? this.merkle : undefined;
  }

  /** Writes the cache (temp file + rename) only if an entry was added, changed or dropped. */
  save(merkle: string, fileCount: number): void {
    if (!this.file || this.unchanged()) return;
    const data: CacheFile = { format: FORMAT, root: this.root, entries: this.next };
    // Only a root made from exactly the stored entries may be reused.
    if (fileCount === this.nextCount) data.merkle = merkle;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    writeFileSync(tmp, JSON.stringify(data));
    renameSync(tmp, this.file);
  }
}
