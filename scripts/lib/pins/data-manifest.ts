// The data pin: a Merkle root over every file of a data directory, plus the manifest that
// lets anyone re-check it. See merkle.ts for the tree and stat-cache.ts for the warm path.
//
// Walking: regular files are pinned; a symlink is followed only when it resolves to a regular
// file inside the directory (pinned under the link's path, with the target's content).
// Symlinks to directories (cycles, double counting) and anything resolving outside the
// directory are skipped, as are sockets, FIFOs and devices. An excluded directory is not
// entered, so `exclude: ['cache']` drops everything under cache/. A cache file kept inside
// the directory is never pinned.
import { lstatSync, readdirSync, realpathSync, statSync, type BigIntStats } from 'node:fs';
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

interface Found {
  rel: string;
  abs: string;
  size: number;
  /** StatCache key: size, mtime (ns) and inode. */
  key: string;
  mtimeNs: bigint;
  /** sha256 from the stat cache, if it had a matching entry. */
  cached?: string;
}

export async function pinData(opts: PinDataOptions): Promise<DataPin> {
  const root = openRoot(opts.dir);
  const skip = opts.cacheFile ? cacheRelPath(root, opts.cacheFile) : undefined;
  const cache = StatCache.load(opts.cacheFile, root);

  // Start the worker threads as soon as the uncached work is known to be large, so they boot
  // (~30 ms) while the walk goes on.
  let pool: HashPool | undefined;
  let uncachedBytes = 0;
  let uncachedFiles = 0;
  let found: Found[];
  try {
    found = walk(root, opts, skip, (f) => {
      f.cached = cache.get(f.rel, f.key);
      if (f.cached !== undefined || pool) return;
      uncachedBytes += f.size;
      if (worthAPool(uncachedBytes, ++uncachedFiles)) pool = new HashPool();
    });
  } catch (err) {
    pool?.close();
    throw err;
  }

  const files: DataManifestFile[] = new Array(found.length);
  const todo: number[] = [];
  for (let i = 0; i < found.length; i++) {
    const f = found[i]!;
    if (f.cached === undefined) todo.push(i);
    files[i] = { path: f.rel, size: f.size, sha256: f.cached ?? '' };
  }
  const hashed = await hashFiles(
    todo.map((i) => ({ path: found[i]!.abs, size: found[i]!.size })),
    opts.onProgress,
    pool,
  );
  const unstable = new Set<number>();
  todo.forEach((i, k) => {
    const { sha256, size } = hashed[k]!;
    // A file that changed size while being read is pinned as read, but not cached.
    if (size !== files[i]!.size) unstable.add(i);
    files[i]!.size = size;
    files[i]!.sha256 = sha256;
  });
  let bytes = 0;
  for (const f of files) bytes += f.size;

  // Every file a hit and none gone: the cache already holds exactly this list (and its root).
  const unchanged = todo.length === 0 && found.length === cache.size;
  const rootHash = (unchanged ? cache.merkle : undefined) ?? merkleRoot(files);
  if (opts.cacheFile && (!unchanged || cache.merkle === undefined)) {
    const seen = found.flatMap((f, i) =>
      unstable.has(i) ? [] : [{ rel: f.rel, key: f.key, mtimeNs: f.mtimeNs, sha256: files[i]!.sha256 }],
    );
    cache.save(seen, rootHash);
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
    const size = abs === undefined ? undefined : statSync(abs, { throwIfNoEntry: false })?.size;
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
    const extra = walk(root, filter, undefined).find((f) => !known.has(f.rel));
    if (extra) candidates.push({ path: extra.rel, problem: 'extra', message: `${extra.rel}: not in the manifest` });
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

function walk(root: string, filter: DataFilter, skipRel: string | undefined, visit?: (f: Found) => void): Found[] {
  const include = filter.include?.length ? picomatch(filter.include, { dot: true }) : undefined;
  const exclude = filter.exclude?.length ? picomatch(filter.exclude, { dot: true }) : undefined;
  const inside = root.endsWith(sep) ? root : root + sep;
  const found: Found[] = [];
  const add = (rel: string, abs: string, st: BigIntStats) => {
    const f: Found = { rel, abs, size: Number(st.size), key: StatCache.keyOf(st), mtimeNs: st.mtimeNs };
    visit?.(f);
    found.push(f);
  };
  const stack: string[] = [''];
  while (stack.length) {
    const dirRel = stack.pop()!;
    const dirAbs = dirRel ? `${inside}${dirRel}` : root;
    for (const d of readdirSync(dirAbs, { withFileTypes: true })) {
      const rel = dirRel ? `${dirRel}/${d.name}` : d.name;
      if (exclude?.(rel)) continue;
      if (d.isDirectory()) {
        stack.push(rel);
        continue;
      }
      if (include && !include(rel)) continue;
      if (skipRel && (rel === skipRel || rel.startsWith(`${skipRel}.tmp-`))) continue;
      const abs = `${inside}${rel}`;
      if (d.isFile()) {
        add(rel, abs, lstatSync(abs, { bigint: true }));
      } else if (d.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(abs);
        } catch {
          continue; // dangling
        }
        if (!target.startsWith(inside)) continue;
        const st = statSync(target, { bigint: true });
        if (st.isFile()) add(rel, target, st);
      }
    }
  }
  return found.sort((a, b) => (a.rel < b.rel ? -1 : 1));
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
