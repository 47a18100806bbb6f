// The data pin's stat cache against a file rewritten at its size with its mtime put back (as
// tar, unzip, cp -p and touch -r do): only the ctime tells, and a view staged from the data
// (which moves the ctimes on itself) must not cost the next pin a read of every file. And a
// file name that is not UTF-8, which no path can name.
import { closeSync, mkdirSync, mkdtempSync, openSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pinData } from '../../scripts/lib/pins/data-manifest.js';
import { removeTree, stageDataView } from '../../scripts/lib/pins/data-view.js';

let tmp: string;
let source: string;
let cacheFile: string;
const LONG_AGO = 1_000_000_000; // seconds: outside the cache's racy window

beforeEach(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'stat-cache-'));
  source = path.join(tmp, 'data');
  cacheFile = path.join(tmp, 'data.statcache');
  mkdirSync(path.join(source, 'sub'), { recursive: true });
  for (const [rel, text] of [['a.csv', 'aaaa\n'], ['sub/b.csv', 'bbbb\n']] as const) {
    writeFileSync(path.join(source, rel), text);
    utimesSync(path.join(source, rel), LONG_AGO, LONG_AGO);
  }
});
afterEach(() => removeTree(tmp));

/** The pin, and how many bytes it had to read (what the cache could not answer). */
async function pin(): Promise<{ root: string; read: number }> {
  let read = 0;
  const { root } = await pinData({ dir: source, cacheFile, onProgress: (_done, total) => (read = total) });
  return { root, read };
}

describe('the data stat cache', () => {
  it('reads again a file rewritten in place at its size with its mtime put back', async () => {
    const first = await pin();
    expect((await pin()).read).toBe(0); // warm
    const fd = openSync(path.join(source, 'a.csv'), 'r+');
    writeSync(fd, 'AAAA', 0);
    closeSync(fd);
    utimesSync(path.join(source, 'a.csv'), LONG_AGO, LONG_AGO);
    const second = await pin();
    expect(second.root).not.toBe(first.root);
    expect(second.root).toBe((await pinData({ dir: source })).root);
  });

  it('stays warm after a view is staged from the data, which links the files and clears their write bits', async () => {
    const { root } = await pin();
    const view = await stageDataView({ source, root, views: path.join(tmp, 'views'), cacheFile });
    expect(view.staged).toEqual({ linked: 2, copied: 0 });
    expect(await pin()).toEqual({ root, read: 0 });
  });
});

describe('data file names', () => {
  it('refuses a name that is not UTF-8 in one line naming it and the fix, unless excluded', async () => {
    writeFileSync(Buffer.from(`${source}/sub/caf\xe9.csv`, 'latin1'), 'x\n');
    await expect(pinData({ dir: source })).rejects.toThrow(/^data: .*sub\/caf\uFFFD\.csv: the name is not UTF-8 .*; rename it to UTF-8 .* or exclude it in the spec's data\.exclude$/);
    expect((await pinData({ dir: source, exclude: ['sub/caf*'] })).files).toBe(2);
    writeFileSync(path.join(source, 'real\uFFFD.csv'), 'y\n'); // U+FFFD itself, in a UTF-8 name
    expect((await pinData({ dir: source, exclude: ['sub/caf*'] })).manifest.files.map((f) => f.path)).toContain('real\uFFFD.csv');
  });
});
