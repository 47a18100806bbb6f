// The data pin: a Merkle root over every file of a data directory, plus the manifest that
// lets anyone re-check it. See merkle.ts for the tree and stat-cache.ts for the warm path.
//
// Walking: regular files are pinned; a symlink is followed only when it resolves to a regular
// file inside the directory (pinned under the link's path, with the target's content).
// Symlinks to directories (cycles, double counting) and anything resolving outside the
// directory are skipped, as are sockets, FIFOs and devices. An excluded directory is not
// entered, so `exclude: ['cache']` drops everything under cache/. A cache file kept inside
// the directory is never pinned.
import { lstatSync, readdirSync, realpathSync, statSync, type BigIntStats, type Dirent } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import picomatch from 'picomatch';
import { UserError } from '../ui/errors.js';
import { HashPool, hashFiles, worthAPool } from './hash-files.js';
import { merkleRoot } from './merkle.js';
import { StatCache } from './stat-cache.js';

export interface DataManifestFile {
  /** POSIX path relative to the data directory. */
  path: string;
  size: number;
  sha256: string;
}

export interface DataManifest {
  format: 'switchyard-data/1';
  root: string;
  /** Sorted by path. */
  files: DataManifestFile[];
}

export interface DataPin {
  root: string;
  files: number;
  bytes: number;
  manifest: DataManifest;
}

export interface DataFilter {
  /** Globs over POSIX relative paths (dot files match); default ['**']. */
  include?: string[];
  /** Globs over relative paths; a matching directory is skipped whole. */
  exclude?: string[];
}

export interface PinDataOptions extends DataFilter {
  dir: string;
  /** JSON stat cache; entries whose size, mtime (ns) and inode match are not re-read. */
  cacheFile?: string;
  /** Fires as bytes are hashed; totalBytes counts only files the cache could not answer. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface DataMismatch {
  path: string;
  problem: 'missing' | 'size' | 'content' | 'extra';
  message: string;
}

/** A file the stat cache could not answer. */
interface Pending {
  file: DataManifestFile;
  abs: string;
  key: string;
  mtimeNs: bigint;
}

export async function pinData(opts: PinDataOptions): Promise<DataPin> {
  const root = openRoot(opts.dir);
  const skip = opts.cacheFile ? cacheRelPath(root, opts.cacheFile) : undefined;
  const cache = StatCache.load(opts.cacheFile, root);

  // Files come in path order, which the manifest needs and the cache's forward cursor relies
  // on. Only cache misses keep more than their manifest line: the warm path over many files
  // is bounded by allocation (GC) as much as by lstat. The worker threads are started as soon as
  // the uncached work is known to be large, so they boot (~30 ms) while the walk goes on.
  const files: DataManifestFile[] = [];
  const pending: Pending[] = [];
  let pool: HashPool | undefined;
  let uncachedBytes = 0;
  try {
    walk(root, opts, skip, (rel, abs, st) => {
      const key = StatCache.keyOf(st);
      const sha256 = cache.get(rel, key);
      const file: DataManifestFile = { path: rel, size: Number(st.size), sha256: sha256 ?? '' };
      files.push(file);
      if (sha256 !== undefined) return;
      pending.push({ file, abs, key, mtimeNs: st.mtimeNs });
      uncachedBytes += file.size;
      if (!pool && worthAPool(uncachedBytes, pending.length)) pool = new HashPool();
    });
  } catch (err) {
    pool?.close();
    throw err;
  }

  const hashed = await hashFiles(
    pending.map((p) => ({ path: p.abs, size: p.file.size })),
    opts.onProgress,
    pool,
  );
  const unstable = new Set<DataManifestFile>();
  pending.forEach((p, k) => {
    const { sha256, size } = hashed[k]!;
    // A file that changed size while being read is pinned as read, but not cached.
    if (size !== p.file.size) unstable.add(p.file);
    p.file.size = size;
    p.file.sha256 = sha256;
  });
  let bytes = 0;
  for (const f of files) bytes += f.size;

  // Every file a hit and none gone: the cache already holds exactly this list (and its root).
  const unchanged = pending.length === 0 && cache.allMatched;
  const rootHash = (unchanged ? cache.merkle : undefined) ?? merkleRoot(files);
  if (opts.cacheFile && (!unchanged || cache.merkle === undefined)) {
    const fresh = new Map(pending.map((p) => [p.file.path, p]));
    await cache.save(
      files.map((f) => {
        const p = fresh.get(f.path);
        if (!p) return { rel: f.path, hit: true };
        return { rel: f.path, key: p.key, mtimeNs: p.mtimeNs, sha256: unstable.has(f) ? undefined : f.sha256 };
      }),
      rootHash,
    );
  }
  const manifest: DataManifest = { format: 'switchyard-data/1', root: rootHash, files };
  return { root: rootHash, files: files.length, bytes, manifest };
}

/**
 * Re-reads the files a manifest lists and returns the first (by path) that is missing or
 * differs, or null when all match. With `filter`, files the manifest lacks count too.
 */
export async function verifyDataManifest(
  dir: string,
  manifest: DataManifest,
  filter?: DataFilter,
): Promise<DataMismatch | null> {
  checkManifest(manifest);
  const root = openRoot(dir);
  const candidates: DataMismatch[] = [];

  // Cheap checks first; only files before the first missing/resized one need hashing.
  let limit = manifest.files.length;
  const paths: string[] = [];
  for (let i = 0; i < manifest.files.length; i++) {
    const f = manifest.files[i]!;
    const abs = insidePath(root, f.path);
    const st = abs === undefined ? undefined : statSync(abs, { throwIfNoEntry: false });
    const size = st?.isFile() ? st.size : undefined;
    if (size === undefined) {
      candidates.push({ path: f.path, problem: 'missing', message: `${f.path}: missing` });
      limit = i;
      break;
    }
    paths.push(abs!);
    if (size !== f.size) {
      candidates.push({ path: f.path, problem: 'size', message: `${f.path}: ${size} bytes, manifest says ${f.size}` });
      limit = i;
      break;
    }
  }
  const listed = manifest.files.slice(0, limit);
  const hashed = await hashFiles(listed.map((f, i) => ({ path: paths[i]!, size: f.size })));
  const bad = listed.findIndex((f, i) => hashed[i]!.sha256 !== f.sha256);
  if (bad >= 0) {
    const f = listed[bad]!;
    candidates.push({ path: f.path, problem: 'content', message: `${f.path}: content differs from the manifest` });
  }

  if (filter) {
    const known = new Set(manifest.files.map((f) => f.path));
    let extra: string | undefined;
    walk(root, filter, undefined, (rel) => {
      if (!known.has(rel) && (extra === undefined || rel < extra)) extra = rel;
    });
    if (extra) candidates.push({ path: extra, problem: 'extra', message: `${extra}: not in the manifest` });
  }
  candidates.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return candidates[0] ?? null;
}

function openRoot(dir: string): string {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UserError(`data directory not found: ${dir}`);
  }
  if (!st.isDirectory()) throw new UserError(`data path is not a directory: ${dir}`);
  return realpathSync(dir);
}

/** The cache file's path relative to root, if it lies inside root. */
function cacheRelPath(root: string, cacheFile: string): string | undefined {
  let abs = resolve(cacheFile);
  try {
    abs = join(realpathSync(dirname(abs)), relative(dirname(abs), abs));
  } catch {
    // parent not created yet; the resolved path is the best guess
  }
  const rel = relative(root, abs);
  if (rel.startsWith('..') || rel === '' || resolve(root, rel) !== abs) return undefined;
  return rel.split(sep).join('/');
}

/** Real path of root/rel if it exists and resolves inside root (symlinks may not lead out). */
function insidePath(root: string, rel: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(join(root, rel));
  } catch {
    return undefined;
  }
  return real.startsWith(root.endsWith(sep) ? root : root + sep) ? real : undefined;
}

/** A test for any of `globs`; picomatch's compiled regexes, minus its per-call wrapper. */
function globTest(globs: string[] | undefined): ((rel: string) => boolean) | undefined {
  if (!globs?.length) return undefined;
  const res = globs.map((g) => picomatch.makeRe(g, { dot: true }));
  return res.length === 1 ? (rel) => res[0]!.test(rel) : (rel) => res.some((re) => re.test(rel));
}

/**
 * Calls `visit` for every regular file to pin, in manifest order (ascending path by `<`): each
 * directory's entries are sorted by name, a subdirectory as `name/`, and a subdirectory is
 * walked where it sorts, so the whole list comes out sorted without sorting it.
 */
function walk(
  root: string,
  filter: DataFilter,
  skipRel: string | undefined,
  visit: (rel: string, abs: string, st: BigIntStats) => void,
): void {
  const include = globTest(filter.include);
  const exclude = globTest(filter.exclude);
  const inside = root.endsWith(sep) ? root : root + sep;
  const walkDir = (dirRel: string) => {
    const entries: { key: string; d: Dirent }[] = [];
    for (const d of readdirSync(dirRel ? `${inside}${dirRel}` : root, { withFileTypes: true })) {
      entries.push({ key: d.isDirectory() ? `${d.name}/` : d.name, d });
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : 1));
    for (const { d } of entries) {
      const rel = dirRel ? `${dirRel}/${d.name}` : d.name;
      if (exclude?.(rel)) continue;
      if (d.name.includes('\uFFFD')) checkUtf8Name(inside, rel);
      if (d.isDirectory()) {
        walkDir(rel);
        continue;
      }
      if (include && !include(rel)) continue;
      if (skipRel && (rel === skipRel || rel.startsWith(`${skipRel}.tmp-`))) continue;
      const abs = `${inside}${rel}`;
      if (d.isFile()) {
        visit(rel, abs, lstatSync(abs, { bigint: true }));
      } else if (d.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(abs);
        } catch {
          continue; // dangling
        }
        if (!target.startsWith(inside)) continue;
        const st = statSync(target, { bigint: true });
        if (st.isFile()) visit(rel, target, st);
      }
    }
  };
  walkDir('');
}

/**
 * A name that is not UTF-8 reaches us with U+FFFD in place of its bad bytes, so the path no
 * longer names the file (and two such names may read the same): refused rather than pinned.
 */
function checkUtf8Name(inside: string, rel: string): void {
  if (lstatSync(`${inside}${rel}`, { throwIfNoEntry: false })) return; // a real U+FFFD in a UTF-8 name
  throw new UserError(
    `data: ${inside}${rel}: the name is not UTF-8 (shown with U+FFFD for its bad bytes), so the data pin cannot name it; rename it to UTF-8 (convmv -f latin1 -t utf8 --notest <file>) or exclude it in the spec's data.exclude`,
  );
}

function checkManifest(m: DataManifest): void {
  if (m?.format !== 'switchyard-data/1' || !Array.isArray(m.files)) {
    throw new UserError(`data manifest: unknown format ${JSON.stringify(m?.format)}, expected switchyard-data/1`);
  }
  for (const f of m.files) {
    const parts = typeof f.path === 'string' ? f.path.split('/') : [''];
    if (parts.some((p) => p === '' || p === '.' || p === '..')) {
      throw new UserError(`data manifest: bad path ${JSON.stringify(f.path)} (must be relative, no . or ..)`);
    }
  }
  let root: string;
  try {
    root = merkleRoot(m.files);
  } catch (err) {
    throw new UserError(`data manifest: ${(err as Error).message}`);
  }
  if (root !== m.root) {
    throw new UserError('data manifest: its root does not match its file list (the manifest was altered)');
  }
}
