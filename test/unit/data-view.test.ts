// The staged data view: exactly the pinned files, linked read-only, reused while intact.
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pinData } from '../../scripts/lib/pins/data-manifest.js';
import { DataChanged, removeTree, stageDataView, viewPaths } from '../../scripts/lib/pins/data-view.js';

let tmp: string;
let source: string;
let views: string;

beforeEach(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'data-view-'));
  source = path.join(tmp, 'data');
  views = path.join(tmp, 'views');
  mkdirSync(path.join(source, 'sub'), { recursive: true });
  writeFileSync(path.join(source, 'input.txt'), 'hello\n');
  writeFileSync(path.join(source, 'train.csv'), 'a,b\n1,2\n');
  writeFileSync(path.join(source, 'sub/more.txt'), 'more\n');
});
afterEach(() => removeTree(tmp));

const filter = { include: ['**'], exclude: ['*.csv'] };
const stage = async (extra: Partial<Parameters<typeof stageDataView>[0]> = {}) => {
  const { root } = await pinData({ dir: source, ...filter });
  return { root, view: await stageDataView({ source, root, views, ...filter, ...extra }) };
};
const listing = (dir: string) => (readdirSync(dir, { recursive: true }) as string[]).sort();

describe('stageDataView', () => {
  it('holds exactly the pinned files, as hard links without write bits, in read-only folders', async () => {
    const { root, view } = await stage();
    expect(view.dir).toBe(viewPaths(views, root).dir);
    expect(view.staged).toEqual({ linked: 2, copied: 0 });
    expect(listing(view.dir)).toEqual(['input.txt', 'sub', 'sub/more.txt']);
    expect(statSync(path.join(view.dir, 'input.txt')).ino).toBe(statSync(path.join(source, 'input.txt')).ino);
    expect(statSync(path.join(view.dir, 'input.txt')).mode & 0o222).toBe(0);
    expect(statSync(path.join(source, 'input.txt')).mode & 0o222).toBe(0); // one inode, one mode
    expect(statSync(view.dir).mode & 0o777).toBe(0o555);
    expect(statSync(path.join(view.dir, 'sub')).mode & 0o777).toBe(0o555);
    expect(statSync(path.join(source, 'train.csv')).mode & 0o200).not.toBe(0); // not pinned: untouched
  });

  it('is reused while intact, even after the data folder moved on', async () => {
    const { root, view } = await stage();
    // The data folder's file is replaced (as editors and git do): the view keeps the pinned one.
    writeFileSync(path.join(source, 'input.next'), 'changed\n');
    renameSync(path.join(source, 'input.next'), path.join(source, 'input.txt'));
    const again = await stageDataView({ source, root, views, ...filter });
    expect(again).toEqual({ dir: view.dir, staged: null });
    expect(readFileSync(path.join(view.dir, 'input.txt'), 'utf8')).toBe('hello\n');
  });

  it('is staged again when something in it changed, and refuses data that no longer matches the pin', async () => {
    const { root, view } = await stage();
    chmodSync(view.dir, 0o755);
    writeFileSync(path.join(view.dir, 'extra.txt'), 'not pinned');
    const restaged = await stageDataView({ source, root, views, ...filter });
    expect(restaged.staged).toEqual({ linked: 2, copied: 0 });
    expect(listing(view.dir)).toEqual(['input.txt', 'sub', 'sub/more.txt']);

    // Edited in place (its write bit given back): the shared inode changed under the view.
    chmodSync(path.join(source, 'input.txt'), 0o644);
    appendFileSync(path.join(source, 'input.txt'), 'edited\n');
    await expect(stageDataView({ source, root, views, ...filter })).rejects.toThrow(DataChanged);
    await expect(stageDataView({ source, root, views, ...filter })).rejects.toThrow(/changed since it was pinned \(pin [0-9a-f]{8}, now [0-9a-f]{8}\)/);
  });

  it('stages a symlinked file with its target content, and one view for two runs at once', async () => {
    symlinkSync('input.txt', path.join(source, 'link.txt'));
    const { root } = await pinData({ dir: source, ...filter });
    const [a, b] = await Promise.all([1, 2].map(() => stageDataView({ source, root, views, ...filter })));
    expect(a!.dir).toBe(b!.dir);
    expect(readFileSync(path.join(a!.dir, 'link.txt'), 'utf8')).toBe('hello\n');
    expect(statSync(path.join(a!.dir, 'link.txt')).isFile()).toBe(true);
    expect(readdirSync(views).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });
});
