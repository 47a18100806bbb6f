// The first copy of a project on hosts whose copy is still empty: one tar stream, packed once,
// unpacked by each host, instead of one rsync per host. rsync's receiver writes every file to a
// temp name and renames it; `tar -x` writes it in place, several times cheaper for a tree of many
// small files, and the sender side (file-list walk, reading the files) is paid once, not per host.
//
// The file set stays rsync's: a dry run of the same push (same excludes) lists what rsync would
// send, so the filter rules keep rsync's meaning (anchored `/x`, wildcards, a fleet's
// sync_excludes). GNU tar packs exactly that list with nanosecond mtimes (pax) and hard links
// stored as plain files, as `rsync -a` leaves them. Unpacked with `tar -x -p`, the copy is what
// `rsync -a` would have made, so every later push is rsync's delta and finds nothing to do.
//
// An archive that compresses (source code does, 2.5-5x) goes to hosts gzipped, compressed once
// for all of them: a fan-out's hosts share the uplink, which then carries a fraction of the bytes.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip, gzipSync } from 'node:zlib';
import { run } from '../proc.js';
import { checkRemotePath } from '../quote.js';

/** The largest project packed; a bigger one goes by plain rsync to each host. */
export const PACK_MAX_BYTES = 64 * 1024 * 1024;

const NUL = Buffer.from([0]);

/** rsync's --out-format writes a byte it will not print as `\#ooo` (octal; `-8` lets UTF-8 through). */
export function decodeRsyncName(line: Buffer): Buffer {
  const text = line.toString('latin1'); // one char per byte, so the escapes can be replaced in place
  return Buffer.from(text.replace(/\\#([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))), 'latin1');
}

/**
 * What `rsync -a` of `src/` with these excludes sends to an empty folder: names relative to src
 * (`.` first, then rsync's order), and how many of them are not folders.
 */
export async function pushFileList(src: string, excludes: readonly string[]): Promise<{ names: Buffer[]; files: number }> {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'switchyard-empty-'));
  try {
    const argv = ['rsync', '-a', '-8', '--dry-run', '--out-format=%n', ...excludes.map((e) => `--exclude=${e}`), '--', `${src}/`, `${empty}/`];
    const lines = (await run(argv)).stdout
      .toString('latin1')
      .split('\n')
      .filter((l) => l && l !== './');
    const names = lines.map((l) => decodeRsyncName(Buffer.from(l.replace(/\/$/, ''), 'latin1')));
    return { names: [Buffer.from('.'), ...names], files: lines.filter((l) => !l.endsWith('/')).length };
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
}

export interface RepoPack {
  archive: Buffer;
  /** files in it (folders not counted) */
  files: number;
  /** the archive is gzip-compressed (see unpackArgv) */
  gzipped: boolean;
}

/**
 * The project as one tar archive (see the top of this file), or null when it would pass
 * `maxBytes` or this machine's rsync or tar cannot make it (not GNU tar): then each host gets
 * the plain rsync push.
 */
export async function packRepo(src: string, excludes: readonly string[], maxBytes = PACK_MAX_BYTES): Promise<RepoPack | null> {
  try {
    const { names, files } = await pushFileList(src, excludes);
    const list = Buffer.concat(names.flatMap((n) => [n, NUL]));
    const argv = ['tar', '-c', '-f', '-', '--format=pax', '--null', '--no-recursion', '--verbatim-files-from', '--hard-dereference', '-C', src, '-T', '-'];
    // Past maxBuffer tar is killed and the result is a failure, so a huge tree never sits in memory.
    const packed = await run(argv, { input: list, maxBuffer: maxBytes, allowFail: true });
    return packed.code === 0 ? { archive: packed.stdout, files, gzipped: false } : null;
  } catch {
    return null;
  }
}

/** The remote argv that unpacks an archive read from stdin into `dest` (an existing folder). */
export function unpackArgv(dest: string, gzipped: boolean): string[] {
  return ['tar', '-x', ...(gzipped ? ['-z'] : []), '-p', '-f', '-', '-C', checkRemotePath(dest)];
}

/** Compressed to at most this share of its size, an archive goes gzipped. */
const GZIP_WORTH = 0.8;
const SLICES = 8;
const SLICE_BYTES = 16 * 1024;

/**
 * Whether gzip shrinks the archive enough to be worth it, judged from slices spread evenly over
 * it: 4-30 ms, where compressing a tree of random or already compressed files whole would
 * cost a quarter of a second per 20 MB and save nothing.
 */
export function worthGzipping(archive: Buffer): boolean {
  const whole = archive.length <= SLICES * SLICE_BYTES;
  const slices = whole
    ? [archive]
    : Array.from({ length: SLICES }, (_, i) => {
        const at = Math.floor((i * (archive.length - SLICE_BYTES)) / (SLICES - 1));
        return archive.subarray(at, at + SLICE_BYTES);
      });
  const size = slices.reduce((n, b) => n + b.length, 0);
  return slices.reduce((n, b) => n + gzipSync(b, { level: 1 }).length, 0) <= size * GZIP_WORTH;
}

/** The pack as it goes to hosts: gzipped where that makes it smaller (off the main thread). */
export async function forHosts(pack: RepoPack): Promise<RepoPack> {
  if (pack.gzipped || !worthGzipping(pack.archive)) return pack;
  const archive = await promisify(gzip)(pack.archive, { level: 1 });
  return archive.length < pack.archive.length * GZIP_WORTH ? { ...pack, archive, gzipped: true } : pack;
}

/** The archives of one fan-out, each packed (and compressed) once however many hosts ask for it. */
export class RepoPacks {
  private readonly packed = new Map<string, Promise<RepoPack | null>>();

  get(src: string, excludes: readonly string[]): Promise<RepoPack | null> {
    const key = JSON.stringify([src, excludes]);
    let pack = this.packed.get(key);
    if (!pack) {
      pack = packRepo(src, excludes).then((p) => p && forHosts(p));
      this.packed.set(key, pack);
    }
    return pack;
  }
}
