// Stat cache: what the last pin of a data directory found, so that a file whose size, mtime (ns),
// inode and ctime (ns) all match its entry is not read again. The ctime is there because no one
// can set it: a file rewritten at its size with its mtime put back (tar, unzip, cp -p, touch -r)
// keeps its inode, or gets the one just freed, and only the ctime says it was written. The file
// is a JSON header line, then one record a file, sorted by path (`<` order, as the manifest):
//
//   <path> NUL <size>:<mtimeNs>:<ino>:<ctimeNs> SP <sha256> LF
//
// A path never holds NUL, and what follows it never holds LF, so records split unambiguously
// even where a name holds a newline. The body is kept as the one string it was read as, and a
// walk in path order looks its files up by a forward cursor, comparing path and key in place:
// a warm pin makes no string a file but the digest it returns. (With the same entries as two
// JSON arrays, a warm pin of 10,000 files spent ~25 ms more parsing them into 20,000 strings
// and collecting those again.)
import { readFileSync } from 'node:fs';
import { writeFileAtomically } from '../store/atomic-file.js';

const FORMAT = 'switchyard-statcache/4';
// Timestamps tick coarser than a rewrite can take (the kernel's clock is jiffy-grained, some
// filesystems keep whole seconds), so a file changed within this window of the pin could be
// rewritten later with an identical stat. Such entries are not stored (git's "racy" rule).
const RACY_WINDOW_NS = 2_000_000_000n;
const NUL = 0;
const SP = 32;
const LF = 10;
const SHA256_HEX = 64;

interface Header {
  format: typeof FORMAT;
  /** Real path of the data directory the records belong to. */
  root: string;
  /** Merkle root of exactly these records (absent when the last pin had unstored files). */
  merkle?: string;
}

/** A file to keep: a hit (its stored entry is carried over) or what a fresh hash found. */
export type StatEntry =
  | { rel: string; hit: true }
  /** sha256 undefined: the file changed while being read; leave it out. */
  | { rel: string; hit?: false; key: string; mtimeNs: bigint; sha256: string | undefined };

export class StatCache {
  /** Offset of the next record to look at: lookups come in path order, so it only moves forward. */
  private cursor: number;
  /** Whether a record was passed over unasked (its file is gone or no longer pinned). */
  private passedOver = false;

  private constructor(
    private readonly file: string | undefined,
    private readonly root: string,
    /** The whole file; records start at `start`, and the last one ends the text. */
    private readonly text: string,
    private readonly start: number,
    /** Merkle root over exactly the loaded records, if known. */
    readonly merkle: string | undefined,
  ) {
    this.cursor = start;
  }

  /** Loads `file` if it exists and belongs to `root`; anything unreadable counts as empty. */
  static load(file: string | undefined, root: string): StatCache {
    if (file) {
      try {
        const text = readFileSync(file, 'utf8');
        const start = text.indexOf('\n') + 1;
        const header = JSON.parse(text.slice(0, start)) as Partial<Header>;
        // Written whole (atomically), so a body that does not end its last record is not ours.
        const whole = start === text.length || text.charCodeAt(text.length - 1) === LF;
        if (start > 0 && header.format === FORMAT && header.root === root && whole) {
          const merkle = typeof header.merkle === 'string' ? header.merkle : undefined;
          return new StatCache(file, root, text, start, merkle);
        }
      } catch {
        // missing, corrupt or of an older format: start empty, it will be rewritten
      }
    }
    return new StatCache(file, root, '', 0, undefined);
  }

  static keyOf(st: { size: bigint; mtimeNs: bigint; ino: bigint; ctimeNs: bigint }): string {
    return `${st.size}:${st.mtimeNs}:${st.ino}:${st.ctimeNs}`;
  }

  /**
   * Moves the entries of `file` keyed `from` to `to`, keeping their hashes: for a change of
   * ctime Switchyard made itself (the data view links and clears write bits of the files it
   * has just pinned), which would otherwise have the next pin read every file again.
   */
  static async restamp(file: string, root: string, moves: ReadonlyMap<string, { from: string; to: string }>): Promise<void> {
    const cache = StatCache.load(file, root);
    if (!cache.text || !moves.size) return;
    const t = cache.text;
    const out: string[] = [t.slice(0, cache.start)];
    let moved = 0;
    // A path may hold LF, what follows its NUL never does: each record ends at the LF after its NUL.
    for (let at = cache.start; at < t.length; ) {
      const nul = t.indexOf('\0', at);
      const end = nul < 0 ? t.length : t.indexOf('\n', nul) + 1 || t.length;
      const move = nul < 0 ? undefined : moves.get(t.slice(at, nul));
      if (move && t.startsWith(`${move.from} `, nul + 1)) {
        out.push(`${t.slice(at, nul + 1)}${move.to}${t.slice(nul + 1 + move.from.length, end)}`);
        moved++;
      } else {
        out.push(t.slice(at, end));
      }
      at = end;
    }
    if (moved) await writeFileAtomically(file, out.join(''));
  }

  /**
   * The cached sha256 for `rel` if its entry matches `key` exactly. Ask in ascending path
   * order: a path before the last one asked is not found (a miss, so only a re-read).
   */
  get(rel: string, key: string): string | undefined {
    const at = this.seek(rel);
    if (at < 0) return undefined;
    const t = this.text;
    const digest = at + key.length + 1;
    const end = digest + SHA256_HEX;
    if (t.startsWith(key, at) && t.charCodeAt(digest - 1) === SP && t.charCodeAt(end) === LF) {
      this.cursor = end + 1;
      return t.slice(digest, end);
    }
    this.cursor = t.indexOf('\n', at) + 1;
    return undefined;
  }

  /**
   * Whether the lookups so far found every record, in order, and nothing else: after a walk
   * whose every file was a hit, the directory holds exactly the cached files.
   */
  get allMatched(): boolean {
    return !this.passedOver && this.cursor === this.text.length;
  }

  /**
   * Replaces the cache with `seen` (sorted by path, atomically), leaving out files modified
   * too recently to trust their stat. `merkle` is kept only if no file was left out.
   */
  async save(seen: readonly StatEntry[], merkle: string): Promise<void> {
    if (!this.file) return;
    const racyAfter = BigInt(Date.now()) * 1_000_000n - RACY_WINDOW_NS;
    const t = this.text;
    this.cursor = this.start;
    const records: string[] = [];
    for (const e of seen) {
      let entry: string | undefined;
      if (e.hit) {
        const at = this.seek(e.rel);
        if (at >= 0) entry = t.slice(at, t.indexOf('\n', at));
      } else if (e.sha256 !== undefined && e.mtimeNs < racyAfter) {
        entry = `${e.key} ${e.sha256}`;
      }
      if (entry !== undefined) records.push(`${e.rel}\0${entry}\n`);
    }
    const header: Header = { format: FORMAT, root: this.root };
    if (records.length === seen.length) header.merkle = merkle;
    await writeFileAtomically(this.file, `${JSON.stringify(header)}\n${records.join('')}`);
  }

  /**
   * Offset of the entry (just past the NUL) of `rel`'s record at or after the cursor, with the
   * cursor left on that record; -1 if there is none, the cursor left on the first record after
   * `rel`. Records passed over on the way belong to files no longer there.
   */
  private seek(rel: string): number {
    const t = this.text;
    while (this.cursor < t.length) {
      const at = this.cursor;
      if (t.startsWith(rel, at) && t.charCodeAt(at + rel.length) === NUL) return at + rel.length + 1;
      const nul = t.indexOf('\0', at);
      if (nul < 0 || t.slice(at, nul) > rel) return -1;
      this.passedOver = true;
      this.cursor = t.indexOf('\n', nul) + 1;
    }
    return -1;
  }
}
