// A file store on a real full or read-only disk (a small tmpfs, root only): one line of error,
// no object left half written, and a restore that does not fit fails instead of skipping the step.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { restoreLatest } from '../../scripts/lib/runner/store-checkpoints.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { commitToStore } from '../helpers/checkpoints.js';
import { mountTmpfs, tmpfsProblem, unmountTmpfs } from '../helpers/tmpfs.js';

let tmp: string;
let store: FileStore;
const RUN = 'toy-default-20260101T0000-00000000';

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'store-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const noMount = tmpfsProblem();
if (noMount) console.warn(`full-disk store tests skipped: ${noMount}`);

describe.skipIf(noMount !== null)('a file store on a full or read-only disk', () => {
  let disk: string;
  beforeEach(() => {
    disk = path.join(tmp, 'disk');
    mkdirSync(disk);
  });
  afterEach(() => unmountTmpfs(disk));

  const oneLine = /^store \S+: no space left on device \(\d+(\.\d)? [KM]?B free\); free space, then run the same command again \(a run resumes from its last committed checkpoint\)$/;

  it('a write that does not fit fails with one line and leaves no object, old or new, half written', async () => {
    mountTmpfs(disk, 'size=16k');
    const full = new FileStore('file://disk', disk);
    await full.putBytes('runs/r/run.json', '{"v":1}\n');
    const big = Buffer.alloc(64 * 1024, 'x');
    await expect(full.putBytes('runs/r/run.json', big)).rejects.toThrow(oneLine);
    expect((await full.getBytes('runs/r/run.json'))!.toString()).toBe('{"v":1}\n');
    await expect(full.putBytes('runs/r/new.json', big)).rejects.toThrow(oneLine);
    expect(await full.getBytes('runs/r/new.json')).toBeNull();
    const src = path.join(tmp, 'big.bin');
    writeFileSync(src, big);
    await expect(full.put('runs/r/ckpt/1/big.bin', src)).rejects.toThrow(oneLine);
    expect(await full.stat('runs/r/ckpt/1/big.bin')).toBeNull();
    expect(readdirSync(path.join(disk, 'runs/r'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)).toEqual(['run.json']);
  });

  it('a checkpoint that does not fit where it is restored fails the restore; it is not skipped as corrupt', async () => {
    mountTmpfs(disk, 'size=16k');
    await commitToStore(store, RUN, path.join(tmp, 'local'), 1, 'x'.repeat(64 * 1024));
    const lines: string[] = [];
    await expect(restoreLatest(store, RUN, path.join(disk, 'ckpt'), (l) => lines.push(l))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(lines).toEqual([]);
  });

  it('a read-only store is one line naming it (not ENOENT)', async () => {
    mountTmpfs(disk, 'size=16k,ro');
    const ro = new FileStore('file://disk', disk);
    const err = await ro.putBytes('runs/r/run.json', '{}').catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^store \S+: read-only file system \(\d+(\.\d)? [KM]?B free\); make it writable, then run the same command again/);
    expect((err as Error).message).not.toContain('\n');
  });
});
