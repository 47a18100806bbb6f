// The tar that fills empty host copies must leave exactly what `rsync -a` of the same push would:
// rsync's own file set (its exclude rules), modes, mtimes, links; and a later rsync push must
// find nothing to do. Unpacked here with the argv a host runs.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, chmodSync, readlinkSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRsyncName, forHosts, packRepo, unpackArgv, worthGzipping, type RepoPack } from '../../scripts/lib/pack/repo-tar.js';
import { SYNC_EXCLUDES } from '../../scripts/lib/ssh/rsync.js';

let tmp: string;
let src: string;
const EXCLUDES = [...SYNC_EXCLUDES, 'scratch-*'];
const ODD = ['a name with spaces.txt', 'new\nline', 'back\\#slash', 'ünïcødé.txt', "it's"];

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-repotar-'));
  src = path.join(tmp, 'src');
  const put = (rel: string, text = rel) => {
    mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    writeFileSync(path.join(src, rel), text);
  };
  put('train.py', 'print(1)\n');
  put('pkg/deep/er/module.py');
  for (const name of ODD) put(`odd/${name}`);
  put('run.sh', '#!/bin/sh\n');
  chmodSync(path.join(src, 'run.sh'), 0o750);
  mkdirSync(path.join(src, 'empty-dir'));
  symlinkSync('train.py', path.join(src, 'link-to-train'));
  linkSync(path.join(src, 'train.py'), path.join(src, 'hard-link'));
  utimesSync(path.join(src, 'pkg/deep/er/module.py'), 1_600_000_000.25, 1_600_000_000.123456);
  // excluded: built-in names anywhere, an anchored path, a wildcard, a caller's pattern
  put('node_modules/x/index.js');
  put('pkg/__pycache__/m.pyc');
  put('.git/HEAD');
  put('bench/.tmp/big.bin');
  put('sub/bench/.tmp/kept.txt'); // `/bench/.tmp` is anchored: this one travels
  put('scratch-1/out.bin');
  put('.env', 'SECRET=1\n');
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function unpack(pack: RepoPack): string {
  const dest = mkdtempSync(path.join(tmp, 'dest-'));
  const [cmd, ...args] = unpackArgv(dest, pack.gzipped);
  execFileSync(cmd!, args, { input: pack.archive });
  return dest;
}

/** `rsync -a -i --dry-run` of src onto dest: empty when dest is what rsync -a would make. */
const rsyncWouldChange = (dest: string) =>
  execFileSync('rsync', ['-a', '-i', '--dry-run', '--delete', ...EXCLUDES.map((e) => `--exclude=${e}`), '--', `${src}/`, `${dest}/`]).toString();

describe('packRepo', () => {
  it('unpacks to what rsync -a would make: a later push with the same excludes changes nothing', async () => {
    const pack = await packRepo(src, EXCLUDES);
    expect(pack).not.toBeNull();
    expect(pack!.gzipped).toBe(false);
    const dest = unpack(pack!);
    expect(rsyncWouldChange(dest)).toBe('');
    // and rsync's own copy has exactly the same names
    const viaRsync = mkdtempSync(path.join(tmp, 'rsync-'));
    execFileSync('rsync', ['-a', ...EXCLUDES.map((e) => `--exclude=${e}`), '--', `${src}/`, `${viaRsync}/`]);
    const list = (dir: string) => execFileSync('find', ['.', '-printf', '%p %y %m\\n'], { cwd: dir }).toString().split('\n').sort();
    expect(list(dest)).toEqual(list(viaRsync));
  });

  it('keeps rsync -a semantics: excludes, modes, mtimes, symlinks, odd names; hard links become files', async () => {
    const pack = (await packRepo(src, EXCLUDES))!;
    const dest = unpack(pack);
    for (const gone of ['node_modules', 'pkg/__pycache__', '.git', 'bench/.tmp', 'scratch-1', '.env']) expect(existsSync(path.join(dest, gone)), gone).toBe(false);
    expect(readFileSync(path.join(dest, 'sub/bench/.tmp/kept.txt'), 'utf8')).toBe('sub/bench/.tmp/kept.txt');
    for (const name of ODD) expect(readFileSync(path.join(dest, 'odd', name), 'utf8')).toBe(`odd/${name}`);
    expect(statSync(path.join(dest, 'run.sh')).mode & 0o777).toBe(0o750);
    expect(statSync(path.join(dest, 'empty-dir')).isDirectory()).toBe(true);
    expect(readlinkSync(path.join(dest, 'link-to-train'))).toBe('train.py');
    expect(statSync(path.join(dest, 'hard-link')).nlink).toBe(1);
    expect(statSync(path.join(dest, 'pkg/deep/er/module.py'), { bigint: true }).mtimeNs).toBe(statSync(path.join(src, 'pkg/deep/er/module.py'), { bigint: true }).mtimeNs);
    // files: every non-folder entry rsync would send
    expect(pack.files).toBe(5 + ODD.length + 1); // train.py, module.py, run.sh, link, hard-link, kept.txt, the odd ones
  });

  it('goes to hosts gzipped when that shrinks it, unpacking to the same tree', async () => {
    // Source-like text: compresses (tar's 512-byte padding alone would), and unpacks as before.
    const pack = (await packRepo(src, EXCLUDES))!;
    const sent = await forHosts(pack);
    expect(sent.gzipped).toBe(true);
    expect(sent.archive.length).toBeLessThan(pack.archive.length * 0.8);
    expect(sent.files).toBe(pack.files);
    expect(rsyncWouldChange(unpack(sent))).toBe('');
    expect(await forHosts(sent)).toBe(sent); // compressed once
  });

  it('stays plain when its files do not compress (random bytes)', async () => {
    const noise = path.join(tmp, 'noise');
    mkdirSync(noise);
    for (let i = 0; i < 8; i++) writeFileSync(path.join(noise, `blob-${i}.bin`), randomBytes(64 * 1024));
    const pack = (await packRepo(noise, EXCLUDES))!;
    expect(pack.archive.length).toBeGreaterThan(8 * 16 * 1024); // judged from slices of it
    expect(worthGzipping(pack.archive)).toBe(false);
    expect(await forHosts(pack)).toBe(pack);
    // Judged over the whole archive, not by its first bytes alone.
    const text = (n: number) => Buffer.alloc(n, 'import os\n');
    expect(worthGzipping(Buffer.concat([text(128 * 1024), randomBytes(896 * 1024)]))).toBe(false);
    expect(worthGzipping(Buffer.concat([randomBytes(128 * 1024), text(896 * 1024)]))).toBe(true);
    expect(worthGzipping(text(4096))).toBe(true);
    expect(worthGzipping(randomBytes(4096))).toBe(false);
  });

  it('gives up (null) past its size limit, so the caller pushes with rsync instead', async () => {
    expect(await packRepo(src, EXCLUDES, 1024)).toBeNull();
    expect(await packRepo(path.join(tmp, 'no-such-folder'), EXCLUDES)).toBeNull();
  });
});

describe('decodeRsyncName', () => {
  it('turns rsync --out-format escapes back into bytes and leaves the rest alone', () => {
    expect(decodeRsyncName(Buffer.from('new\\#012line')).toString()).toBe('new\nline');
    expect(decodeRsyncName(Buffer.from('back\\#134#slash')).toString()).toBe('back\\#slash');
    expect(decodeRsyncName(Buffer.from('plain\\name')).toString()).toBe('plain\\name');
    expect(decodeRsyncName(Buffer.from('ünï', 'utf8')).toString('utf8')).toBe('ünï');
  });
});
