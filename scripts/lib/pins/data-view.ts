// The staged data view: a folder holding exactly the files of one data pin, read-only, which
// the experiment gets as $SWITCHYARD_DATA_DIR instead of the live data folder. Files are hard
// links to the data folder's own (a copy where the filesystem refuses a link), so staging
// costs no space and no reading; a link shares its inode, so its write bits are cleared in
// the data folder too, and an edit in place cannot change a pinned file under a run.
//
//   <views>/<root>/data/          the view (folders 0555, files without write bits)
//   <views>/<root>/record.json    each file's inode, size and mtime as staged
//
// Both are built under a temp name and renamed into place together, so a view that exists is
// complete. A later run with the same data pin reuses it after one lstat per file (the record
// must still match: nothing added, removed or rewritten); otherwise it is staged again.
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, constants, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { pinData, type DataFilter } from './data-manifest.js';
import { StatCache } from './stat-cache.js';

const FORMAT = 'switchyard-data-view/1';
const READ_ONLY_DIR = 0o555;

interface ViewRecord {
  format: typeof FORMAT;
  root: string;
  /** relative path → `<size>:<mtimeNs>:<ino>` of the staged file */
  files: Record<string, string>;
}

export interface StagedView {
  /** the folder to hand to the experiment */
  dir: string;
  /** how it came to be: reused, or staged now with so many links and copies */
  staged: { linked: number; copied: number } | null;
}

export interface StageOptions extends DataFilter {
  /** the live data folder */
  source: string;
  /** the data pin's Merkle root: the view holds exactly its files */
  root: string;
  /** where views live */
  views: string;
  /** the data pin's stat cache, so re-pinning the source reads only what changed */
  cacheFile?: string;
}

/** The data pin's files, changed since it was pinned: staging refuses to pass them off as pinned. */
export class DataChanged extends Error {}

export function viewPaths(views: string, root: string) {
  const base = path.join(views, root);
  return { base, dir: path.join(base, 'data'), record: path.join(base, 'record.json') };
}

/** Every regular file below `dir`, relative, with its stat key; anything else makes the view unfit (null). */
function listView(dir: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isDirectory()) continue;
    if (!e.isFile()) return null;
    const abs = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, abs).split(path.sep).join('/'), viewKey(lstatSync(abs, { bigint: true })));
  }
  return out;
}

/**
 * A staged file's size, mtime and inode. Not its ctime, as the stat cache keeps: a view's files
 * are the data folder's own inodes, whose ctime every later view staged from them moves on.
 */
function viewKey(st: { size: bigint; mtimeNs: bigint; ino: bigint }): string {
  return `${st.size}:${st.mtimeNs}:${st.ino}`;
}

/**
 * Tells the stat cache of the ctimes staging moved on (a link and its cleared write bits),
 * where nothing else about the file changed, so the next pin does not read it all again.
 */
async function restampSources(cacheFile: string, source: string, rels: string[], sources: string[], before: BigIntStats[]): Promise<void> {
  const moves = new Map<string, { from: string; to: string }>();
  sources.forEach((src, i) => {
    const now = lstatSync(src, { bigint: true });
    if (viewKey(now) === viewKey(before[i]!) && now.ctimeNs !== before[i]!.ctimeNs) moves.set(rels[i]!, { from: StatCache.keyOf(before[i]!), to: StatCache.keyOf(now) });
  });
  await StatCache.restamp(cacheFile, realpathSync(source), moves);
}

/** Whether the view at `views/<root>` is complete and untouched since it was staged. */
function isIntact(views: string, root: string): boolean {
  const p = viewPaths(views, root);
  let record: ViewRecord;
  let found: Map<string, string> | null;
  try {
    record = JSON.parse(readFileSync(p.record, 'utf8')) as ViewRecord;
    found = listView(p.dir);
  } catch {
    return false;
  }
  if (record.format !== FORMAT || record.root !== root || !found) return false;
  const expected = Object.entries(record.files);
  return expected.length === found.size && expected.every(([rel, key]) => found.get(rel) === key);
}

/** Removes a tree whose folders may be read-only. */
export function removeTree(dir: string): void {
  try {
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (e.isDirectory()) chmodSync(path.join(e.parentPath, e.name), 0o755);
    }
    chmodSync(dir, 0o755);
  } catch {
    // gone already, or not ours to open: rmSync says what is wrong, if anything
  }
  rmSync(dir, { recursive: true, force: true });
}

// A link that cannot be made (another filesystem, a file not ours under protected_hardlinks)
// or whose mode is not ours to change: a copy instead.
const COPY_INSTEAD = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EACCES']);

function dropWriteBits(file: string): void {
  const mode = lstatSync(file).mode & 0o7777;
  if (mode & 0o222) chmodSync(file, mode & ~0o222);
}

/** Links (or copies) `src` to `dest`, without write bits; true when it is a link. */
function placeFile(src: string, dest: string): boolean {
  try {
    linkSync(src, dest);
    dropWriteBits(dest);
    return true;
  } catch (err) {
    if (!COPY_INSTEAD.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    rmSync(dest, { force: true });
  }
  copyFileSync(src, dest, constants.COPYFILE_FICLONE);
  dropWriteBits(dest);
  return false;
}

/**
 * The view of data pin `root`: reused when intact, else staged from `source`, which must still
 * hold exactly the pinned files (else DataChanged).
 */
export async function stageDataView(opts: StageOptions): Promise<StagedView> {
  const p = viewPaths(opts.views, opts.root);
  if (isIntact(opts.views, opts.root)) return { dir: p.dir, staged: null };

  const pin = await pinData({ dir: opts.source, include: opts.include, exclude: opts.exclude, cacheFile: opts.cacheFile });
  if (pin.root !== opts.root) {
    throw new DataChanged(`the data in ${opts.source} changed since it was pinned (pin ${opts.root.slice(0, 8)}, now ${pin.root.slice(0, 8)})`);
  }
  mkdirSync(opts.views, { recursive: true });
  const tmp = path.join(opts.views, `.tmp-${randomBytes(6).toString('hex')}`);
  const tmpDir = path.join(tmp, 'data');
  try {
    const dirs = new Set<string>([tmpDir]);
    let linked = 0;
    // A symlink in the data folder is pinned with its target's content: link the target.
    const sources = pin.manifest.files.map((f) => realpathSync(path.join(opts.source, ...f.path.split('/'))));
    const before = sources.map((src) => lstatSync(src, { bigint: true }));
    pin.manifest.files.forEach((f, i) => {
      const dest = path.join(tmpDir, ...f.path.split('/'));
      for (let d = path.dirname(dest); !dirs.has(d); d = path.dirname(d)) dirs.add(d);
      mkdirSync(path.dirname(dest), { recursive: true });
      if (placeFile(sources[i]!, dest)) linked++;
    });
    const rels = pin.manifest.files.map((f) => f.path);
    if (opts.cacheFile) await restampSources(opts.cacheFile, opts.source, rels, sources, before);
    const record: ViewRecord = { format: FORMAT, root: opts.root, files: Object.fromEntries(listView(tmpDir)!) };
    // Deepest first: a folder made read-only takes no more entries.
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) chmodSync(d, READ_ONLY_DIR);
    writeFileSync(path.join(tmp, 'record.json'), JSON.stringify(record) + '\n');
    // A broken view in the way goes first; a complete one put there meanwhile by another run wins.
    if (!isIntact(opts.views, opts.root)) removeTree(p.base);
    try {
      renameSync(tmp, p.base);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !isIntact(opts.views, opts.root)) throw err;
      removeTree(tmp);
      return { dir: p.dir, staged: null };
    }
    return { dir: p.dir, staged: { linked, copied: pin.manifest.files.length - linked } };
  } catch (err) {
    removeTree(tmp);
    throw err;
  }
}
