import { createHash } from 'node:crypto';
import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../scripts/lib/pins/canonical-json.js';
import { pinData, verifyDataManifest } from '../../scripts/lib/pins/data-manifest.js';
import { comparePins, configPin, makeRunId, pinDigest, type PinsWithoutDigest } from '../../scripts/lib/pins/digest.js';
import { merkleRoot } from '../../scripts/lib/pins/merkle.js';
import { codeScope } from '../../scripts/lib/pins/pin-experiment.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { scratchFolders, writeTree } from '../helpers/file-tree.js';

const tempDir = scratchFolders('switchyard-pins-');

const OLD = 1_600_000_000; // whole seconds, so utimes restores the mtime exactly
function age(root: string) {
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) utimesSync(join(e.parentPath ?? e.path, e.name), OLD, OLD);
  }
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** The paths a stat cache file holds: a header line, then `path NUL entry LF` records. */
function cachedPaths(cacheFile: string): string[] {
  const text = readFileSync(cacheFile, 'utf8');
  return text
    .slice(text.indexOf('\n') + 1)
    .split(/(?<=\0[^\n]*)\n/)
    .filter(Boolean)
    .map((record) => record.slice(0, record.indexOf('\0')));
}

describe('canonicalJson', () => {
  it('sorts keys at every level, drops undefined, no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson({ x: 1, y: 2 })).toBe(canonicalJson({ y: 2, x: 1 }));
  });
  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow();
    expect(() => canonicalJson(1n)).toThrow();
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => canonicalJson(cyc)).toThrow(/circular/);
  });
  it('sha256Hex', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('pinData', () => {
  it('computes the documented Merkle root', async () => {
    const dir = writeTree(tempDir(), { 'a.txt': 'hello', 'sub/b.txt': 'x' });
    const sub = sha(`file ${sha('x')} 1 b.txt\n`);
    const expected = sha(`file ${sha('hello')} 5 a.txt\ndir ${sub} 1 sub\n`);
    const pin = await pinData({ dir });
    expect(pin.root).toBe(expected);
    expect(pin).toMatchObject({ files: 2, bytes: 6 });
    expect(pin.manifest).toEqual({
      format: 'switchyard-data/1',
      root: expected,
      files: [
        { path: 'a.txt', size: 5, sha256: sha('hello') },
        { path: 'sub/b.txt', size: 1, sha256: sha('x') },
      ],
    });
  });

  it('is stable across runs and copies, and moves with any change', async () => {
    const tree = { 'a.csv': 'a,b\n1,2\n', 'x/y/z.bin': Buffer.from([0, 1, 2, 3]), '.hidden': 'h', 'x/w': '' };
    const dir = writeTree(tempDir(), tree);
    const root = (await pinData({ dir })).root;
    expect((await pinData({ dir })).root).toBe(root);
    const copy = writeTree(tempDir(), tree);
    mkdirSync(join(copy, 'empty/dir'), { recursive: true }); // empty directories do not count
    expect((await pinData({ dir: copy })).root).toBe(root);

    writeFileSync(join(copy, 'a.csv'), 'a,b\n1,3\n'); // one byte, same size
    const changed = (await pinData({ dir: copy })).root;
    expect(changed).not.toBe(root);
    writeFileSync(join(copy, 'a.csv'), tree['a.csv']);
    expect((await pinData({ dir: copy })).root).toBe(root);

    renameSync(join(copy, 'x/w'), join(copy, 'x/v'));
    const renamed = (await pinData({ dir: copy })).root;
    expect(renamed).not.toBe(root);
    renameSync(join(copy, 'x/v'), join(copy, 'x/w'));

    writeFileSync(join(copy, 'x/new'), '');
    const added = (await pinData({ dir: copy })).root;
    expect(new Set([root, changed, renamed, added]).size).toBe(4);
  });

  it('honours include and exclude, dot files included', async () => {
    const dir = writeTree(tempDir(), {
      'train.csv': '1',
      '.meta.csv': '2',
      'notes.txt': '3',
      'cache/big.csv': '4',
      'deep/cache/keep.csv': '5',
      'deep/ok.csv': '6',
    });
    const paths = async (o: { include?: string[]; exclude?: string[] }) =>
      (await pinData({ dir, ...o })).manifest.files.map((f) => f.path);
    expect(await paths({})).toEqual([
      '.meta.csv',
      'cache/big.csv',
      'deep/cache/keep.csv',
      'deep/ok.csv',
      'notes.txt',
      'train.csv',
    ]);
    expect(await paths({ include: ['**/*.csv'], exclude: ['cache'] })).toEqual([
      '.meta.csv',
      'deep/cache/keep.csv',
      'deep/ok.csv',
      'train.csv',
    ]);
    expect(await paths({ exclude: ['**/cache', '*.txt'] })).toEqual(['.meta.csv', 'deep/ok.csv', 'train.csv']);
    expect(await paths({ include: ['deep/**'] })).toEqual(['deep/cache/keep.csv', 'deep/ok.csv']);
  });

  it('follows only symlinks to files inside the directory', async () => {
    const outside = writeTree(tempDir(), { 'secret.txt': 'outside' });
    const dir = writeTree(tempDir(), { 'real/a.txt': 'A' });
    symlinkSync(join(dir, 'real/a.txt'), join(dir, 'link.txt'));
    symlinkSync(join(dir, 'real'), join(dir, 'linkdir'));
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'escape.txt'));
    symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
    const pin = await pinData({ dir });
    expect(pin.manifest.files).toEqual([
      { path: 'link.txt', size: 1, sha256: sha('A') },
      { path: 'real/a.txt', size: 1, sha256: sha('A') },
    ]);
  });

  it('hashes big jobs on worker threads with the same result, reporting progress', async () => {
    const dir = tempDir();
    const big = Buffer.alloc(40 << 20);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    writeFileSync(join(dir, 'one.bin'), big);
    big[0] = 1;
    writeFileSync(join(dir, 'two.bin'), big);
    for (let i = 0; i < 50; i++) writeFileSync(join(dir, `s${i}.txt`), `small ${i}`);
    const seen: [number, number][] = [];
    const pin = await pinData({ dir, onProgress: (d, t) => seen.push([d, t]) });
    const byPath = new Map(pin.manifest.files.map((f) => [f.path, f.sha256]));
    expect(byPath.get('one.bin')).toBe(sha(readFileSync(join(dir, 'one.bin'))));
    expect(byPath.get('two.bin')).toBe(sha(big));
    expect(byPath.get('s7.txt')).toBe(sha('small 7'));
    expect(pin.bytes).toBe(2 * big.length + 50 * 7 + 40);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toEqual([pin.bytes, pin.bytes]);
    expect(pin.root).toBe(merkleRoot(pin.manifest.files));
  });

  it('names a missing directory', async () => {
    const missing = join(tempDir(), 'no-such-dir');
    await expect(pinData({ dir: missing })).rejects.toThrow(UserError);
    await expect(pinData({ dir: missing })).rejects.toThrow(missing);
  });
});

describe('stat cache', () => {
  it('does not re-read a file whose size, mtime, inode and ctime match', async () => {
    const dir = writeTree(tempDir(), { 'a.txt': 'aaaa', 'b/c.txt': 'cccc' });
    const cacheFile = join(tempDir(), 'cache.json');
    age(dir);
    const first = await pinData({ dir, cacheFile });
    const cacheStat = statSync(cacheFile, { bigint: true });

    // Nothing changed: the cache answers, so nothing is hashed (no progress) and the cache file
    // is not rewritten.
    let hashed = 0;
    const warm = await pinData({ dir, cacheFile, onProgress: (d) => (hashed = d) });
    expect(warm.root).toBe(first.root);
    expect(hashed).toBe(0);
    expect(statSync(cacheFile, { bigint: true }).mtimeNs).toBe(cacheStat.mtimeNs);

    // Same size, same inode (rewritten in place), mtime put back: the ctime moved, so it is read.
    writeFileSync(join(dir, 'a.txt'), 'AAAA');
    utimesSync(join(dir, 'a.txt'), OLD, OLD);
    const rewritten = await pinData({ dir, cacheFile, onProgress: (d) => (hashed = d) });
    expect(hashed).toBe(4);
    expect(rewritten.root).toBe((await pinData({ dir })).root);

    // Touching the file (a different mtime) makes it be read again.
    utimesSync(join(dir, 'a.txt'), OLD + 1, OLD + 1);
    const touched = await pinData({ dir, cacheFile, onProgress: (d) => (hashed = d) });
    expect(hashed).toBe(4);
    expect(touched.manifest.files[0]).toEqual({ path: 'a.txt', size: 4, sha256: sha('AAAA') });
    expect(touched.root).toBe((await pinData({ dir })).root);
  });

  it('re-reads on size change and on a new inode, and drops deleted files', async () => {
    const dir = writeTree(tempDir(), { 'a.txt': 'aaaa', 'b.txt': 'bbbb' });
    const cacheFile = join(tempDir(), 'cache.json');
    age(dir);
    await pinData({ dir, cacheFile });

    appendFileSync(join(dir, 'a.txt'), '!');
    utimesSync(join(dir, 'a.txt'), OLD, OLD);
    writeFileSync(join(dir, 'b.tmp'), 'BBBB'); // replace b.txt by a new inode, same size/mtime
    utimesSync(join(dir, 'b.tmp'), OLD, OLD);
    renameSync(join(dir, 'b.tmp'), join(dir, 'b.txt'));
    const pin = await pinData({ dir, cacheFile });
    expect(pin.manifest.files.map((f) => f.sha256)).toEqual([sha('aaaa!'), sha('BBBB')]);

    unlinkSync(join(dir, 'b.txt'));
    await pinData({ dir, cacheFile });
    expect(cachedPaths(cacheFile)).toEqual(['a.txt']);
  });

  it('does not trust files modified just now, and never pins itself', async () => {
    const dir = writeTree(tempDir(), { 'old.txt': 'o' });
    age(dir);
    writeFileSync(join(dir, 'fresh.txt'), 'f');
    const cacheFile = join(dir, '.switchyard-cache.json');
    const pin = await pinData({ dir, cacheFile });
    expect(pin.manifest.files.map((f) => f.path)).toEqual(['fresh.txt', 'old.txt']);
    expect(cachedPaths(cacheFile)).toEqual(['old.txt']);
    expect((await pinData({ dir, cacheFile })).root).toBe(pin.root);
  });

  it('lists files in path order where a directory sorts against names beside it', async () => {
    // '.' (0x2e) < '/' (0x2f) < '0' (0x30): the directory a/ falls between a.b and a0.
    const tree = { 'a0': '1', 'a/x': '2', 'a.b': '3', 'a/y/z': '4', 'a-': '5', 'b': '6' };
    const dir = writeTree(tempDir(), tree);
    const cacheFile = join(tempDir(), 'cache.json');
    age(dir);
    const cold = await pinData({ dir, cacheFile });
    const paths = cold.manifest.files.map((f) => f.path);
    expect(paths).toEqual(Object.keys(tree).sort());
    expect(paths).toEqual(['a-', 'a.b', 'a/x', 'a/y/z', 'a0', 'b']);

    // Every file is answered by the cache walking forward through it.
    let hashed = 0;
    const warm = await pinData({ dir, cacheFile, onProgress: (d) => (hashed = d) });
    expect(hashed).toBe(0);
    expect(warm.manifest).toEqual(cold.manifest);
  });

  it('answers names with newlines and non-ASCII letters, and notices a file gone mid-list', async () => {
    const tree = { 'a\nb.txt': '1', 'é/ü.csv': '2', 'm.txt': '3', 'z\n': '4' };
    const dir = writeTree(tempDir(), tree);
    const cacheFile = join(tempDir(), 'cache.statcache');
    age(dir);
    const cold = await pinData({ dir, cacheFile });
    expect(cachedPaths(cacheFile)).toEqual(Object.keys(tree).sort());

    let hashed = -1;
    const warm = await pinData({ dir, cacheFile, onProgress: (d) => (hashed = d) });
    expect(hashed).toBe(-1); // nothing to hash: every file, odd names too, was a hit
    expect(warm.manifest).toEqual(cold.manifest);

    // Every file left is a hit, but the list is shorter: the root is computed afresh, not reused.
    unlinkSync(join(dir, 'm.txt'));
    const after = await pinData({ dir, cacheFile, onProgress: (d) => (hashed = d) });
    expect(hashed).toBe(-1);
    expect(after.root).toBe((await pinData({ dir })).root);
    expect(after.root).not.toBe(cold.root);
    expect(cachedPaths(cacheFile)).toEqual(['a\nb.txt', 'z\n', 'é/ü.csv']);

    // The same where the file gone is the last one.
    unlinkSync(join(dir, 'é/ü.csv'));
    const last = await pinData({ dir, cacheFile });
    expect(last.root).toBe((await pinData({ dir })).root);
    expect(last.root).not.toBe(after.root);
  });

  it('ignores a corrupt cache', async () => {
    const dir = writeTree(tempDir(), { 'a.txt': 'a' });
    const cacheFile = join(tempDir(), 'cache.json');
    writeFileSync(cacheFile, '{not json');
    expect((await pinData({ dir, cacheFile })).root).toBe((await pinData({ dir })).root);

    // A body cut off mid-record, its header intact, is not trusted either.
    age(dir);
    await pinData({ dir, cacheFile });
    writeFileSync(cacheFile, readFileSync(cacheFile, 'utf8').slice(0, -10));
    let hashed = 0;
    await pinData({ dir, cacheFile, onProgress: (d) => (hashed = d) });
    expect(hashed).toBe(1);
    expect(cachedPaths(cacheFile)).toEqual(['a.txt']);
  });
});

describe('verifyDataManifest', () => {
  it('passes an intact tree and names the first mismatching file', async () => {
    const dir = writeTree(tempDir(), { 'a.txt': 'a', 'b.txt': 'b', 'c/d.txt': 'd' });
    const { manifest } = await pinData({ dir });
    expect(await verifyDataManifest(dir, manifest)).toBeNull();
    expect(await verifyDataManifest(dir, manifest, {})).toBeNull();

    writeFileSync(join(dir, 'c/d.txt'), 'D');
    expect(await verifyDataManifest(dir, manifest)).toMatchObject({ path: 'c/d.txt', problem: 'content' });
    writeFileSync(join(dir, 'b.txt'), 'bigger');
    expect(await verifyDataManifest(dir, manifest)).toMatchObject({ path: 'b.txt', problem: 'size' });
    unlinkSync(join(dir, 'a.txt'));
    const missing = await verifyDataManifest(dir, manifest);
    expect(missing).toMatchObject({ path: 'a.txt', problem: 'missing' });
    expect(missing!.message).toContain('a.txt');
  });

  it('reports files the manifest lacks when given the filter', async () => {
    const dir = writeTree(tempDir(), { 'a.txt': 'a' });
    const { manifest } = await pinData({ dir });
    writeFileSync(join(dir, '0-new.txt'), 'n');
    expect(await verifyDataManifest(dir, manifest)).toBeNull();
    expect(await verifyDataManifest(dir, manifest, {})).toMatchObject({ path: '0-new.txt', problem: 'extra' });
  });

  it('rejects an altered or unsafe manifest', async () => {
    const dir = writeTree(tempDir(), { 'a.txt': 'a' });
    const { manifest } = await pinData({ dir });
    await expect(verifyDataManifest(dir, { ...manifest, root: '0'.repeat(64) })).rejects.toThrow(UserError);
    const evil = { ...manifest, files: [{ path: '../a.txt', size: 1, sha256: sha('a') }] };
    await expect(verifyDataManifest(dir, evil)).rejects.toThrow(/bad path/);
  });
});

describe('codeScope', () => {
  const exp = (dataDir: string | null, code?: string[]) =>
    ({ competitionDir: '/r/competitions/a', dataDir, spec: { code } }) as unknown as Parameters<typeof codeScope>[1];

  it('covers the competition folder, declared paths and the project code, leaving out a data folder inside them and the inventory', () => {
    expect(codeScope('/r', exp('/r/competitions/a/data', ['lib/']))).toEqual({
      paths: ['competitions/a', 'lib/', 'scripts'],
      exclude: ['competitions/a/data', 'cluster_fleet_config.ts'],
    });
    // Data that is the competition folder itself (input.txt beside the code) keeps the code pinned.
    expect(codeScope('/r', exp('/r/competitions/a')).exclude).toEqual(['cluster_fleet_config.ts']);
    expect(codeScope('/r', exp('/r/shared/data')).exclude).toEqual(['cluster_fleet_config.ts']);
  });
});

describe('digest and run id', () => {
  const base: PinsWithoutDigest = {
    code: { commit: 'a'.repeat(40), dirty_sha256: null },
    data: { root: 'b'.repeat(64), files: 3, bytes: 1234 },
    env: { lock_sha256: 'c'.repeat(64), python: '3.11.2', node: 'v20.11.0' },
    config: 'd'.repeat(64),
    seed: 0,
  };

  it('is the same for the same pins and differs when any single pin changes', () => {
    const d = pinDigest(base);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(pinDigest(structuredClone(base))).toBe(d);
    // data.files/bytes follow from the root and do not count on their own
    expect(pinDigest({ ...base, data: { ...base.data, files: 4 } })).toBe(d);
    const variants: PinsWithoutDigest[] = [
      { ...base, code: { ...base.code, commit: 'e'.repeat(40) } },
      { ...base, code: { ...base.code, dirty_sha256: 'f'.repeat(64) } },
      { ...base, data: { ...base.data, root: 'e'.repeat(64) } },
      { ...base, env: { ...base.env, lock_sha256: 'e'.repeat(64) } },
      { ...base, env: { ...base.env, python: null } },
      { ...base, env: { ...base.env, node: 'v22.0.0' } },
      { ...base, config: 'e'.repeat(64) },
      { ...base, seed: 1 },
    ];
    const digests = new Set([d, ...variants.map(pinDigest)]);
    expect(digests.size).toBe(variants.length + 1);
  });

  it('configPin ignores key order', () => {
    expect(configPin({ lr: 0.1, model: { depth: 3, width: 8 } })).toBe(
      configPin({ model: { width: 8, depth: 3 }, lr: 0.1 }),
    );
    expect(configPin({ lr: 0.1 })).not.toBe(configPin({ lr: 0.2 }));
  });

  it('makes run ids <slug>-<name>-<UTC yyyymmddThhmm>-<last 8 hex>', () => {
    const digest = pinDigest(base);
    const id = makeRunId('penguins', 'baseline', new Date('2024-03-05T04:07:59.999Z'), digest);
    expect(id).toBe(`penguins-baseline-20240305T0407-${digest.slice(-8)}`);
    expect(id).toMatch(/^[a-z0-9-]+-\d{8}T\d{4}-[0-9a-f]{8}$/);
    expect(() => makeRunId('a', 'b', new Date(), 'xyz')).toThrow();
  });

  it('comparePins names each differing pin', () => {
    expect(comparePins(base, base)).toEqual([]);
    const here: PinsWithoutDigest = {
      code: { commit: 'def5678' + '0'.repeat(33), dirty_sha256: '9'.repeat(64) },
      data: { root: 'e'.repeat(64), files: 4, bytes: 2048 },
      env: { ...base.env, python: '3.12.0' },
      config: base.config,
      seed: 7,
    };
    const diffs = comparePins({ ...base, code: { ...base.code, commit: 'abc1234' + '0'.repeat(33) } }, here);
    expect(diffs).toEqual([
      'code: commit abc1234 recorded, def5678 here',
      'code: clean tree recorded, uncommitted changes 99999999 here',
      'data: root bbbbbbbb (3 files, 1.2 KiB) recorded, eeeeeeee (4 files, 2.0 KiB) here',
      'env: python 3.11.2 recorded, 3.12.0 here',
      'seed: 0 recorded, 7 here',
    ]);
  });
});
