// The code pin and symlinks: git pins a link as its text, so what a link in the scope leads to
// must be pinned too (a repository path outside the scope) or refused (a path outside the
// repository), or an edit there would leave the pin as it was.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pinCode } from '../../scripts/lib/pins/code-pin.js';
import { run } from '../../scripts/lib/proc.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { scratchFolders, writeTree } from '../helpers/file-tree.js';

const tempDir = scratchFolders('switchyard-pin-links-');
const git = (cwd: string, ...args: string[]) =>
  run(['git', '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd });

async function project(outside: string): Promise<string> {
  const dir = writeTree(tempDir(), {
    'competitions/a/train.py': 'import helper\n',
    'competitions/a/data/x.csv': '1\n',
    'shared/helper.py': 'X = 1\n',
    'shared/more/deep.py': 'D = 1\n',
    'elsewhere/data.csv': '1\n',
  });
  symlinkSync('../../shared/helper.py', join(dir, 'competitions/a/helper.py'));
  symlinkSync('../../elsewhere/data.csv', join(dir, 'competitions/a/data/linked.csv'));
  symlinkSync(outside, join(dir, 'outlink'));
  await git(dir, 'init', '-q');
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', 'init');
  return dir;
}

describe('code pin and symlinks', () => {
  const scope = { paths: ['competitions/a', 'scripts'], exclude: ['competitions/a/data'] };

  it('counts an edit to what a link in the scope leads to elsewhere in the repository, committed or new', async () => {
    const dir = await project(tempDir());
    for (const markCache of [undefined, join(dir, '.switchyard', 'cache', 'index-unmarked')]) {
      writeFileSync(join(dir, 'shared/helper.py'), 'X = 1\n');
      writeFileSync(join(dir, 'shared/more/deep.py'), 'D = 1\n');
      expect((await pinCode(dir, scope, { markCache })).dirty_sha256).toBeNull();
      writeFileSync(join(dir, 'shared/helper.py'), 'X = 2\n');
      const edited = await pinCode(dir, scope, { markCache });
      expect(edited.diff.toString()).toContain('+X = 2');
      expect((await pinCode(dir, scope, { markCache })).dirty_sha256).toBe(edited.dirty_sha256); // remembered, same pin
    }
    // A link not yet committed counts the same way, and a link into the data folder stays with the data pin.
    symlinkSync('../../shared/more', join(dir, 'competitions/a/mé "more"'));
    writeFileSync(join(dir, 'shared/more/deep.py'), 'D = 2\n');
    writeFileSync(join(dir, 'elsewhere/data.csv'), '2\n');
    const diff = (await pinCode(dir, scope)).diff.toString();
    expect(diff).toContain('+D = 2');
    expect(diff).not.toContain('elsewhere');
  });

  it('leaves a data folder that is a link out of the repository (data on another disk) to the data pin', async () => {
    const disk = writeTree(tempDir(), { 'x.csv': '1\n' });
    const dir = writeTree(tempDir(), { 'competitions/a/train.py': 'print(1)\n' });
    symlinkSync(disk, join(dir, 'competitions/a/data'));
    await git(dir, 'init', '-q');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'init');
    expect(await pinCode(dir, scope)).toMatchObject({ dirty_sha256: null });
    symlinkSync(disk, join(dir, 'competitions/a/data2')); // one not excluded is refused
    await expect(pinCode(dir, scope)).rejects.toThrow(/^code pin: competitions\/a\/data2 is a symlink to/);
  });

  it('refuses a link leading out of the repository, in one line naming it and the fix', async () => {
    const outside = writeTree(tempDir(), { 'lib.py': 'L = 1\n' });
    const dir = await project(outside);
    expect(await pinCode(dir, scope)).toMatchObject({ dirty_sha256: null }); // the link is not in the scope
    const asCodePath = pinCode(dir, { paths: [...scope.paths, 'outlink'], exclude: scope.exclude });
    await expect(asCodePath).rejects.toThrow(UserError);
    await expect(asCodePath).rejects.toThrow(/^code pin: outlink \(the competition folder or a code: path of the spec\) is a symlink to .*, outside the repository, so no pin can see what it reads there; move or copy/);
    mkdirSync(join(dir, 'competitions/a/lib'));
    symlinkSync(join(outside, 'lib.py'), join(dir, 'competitions/a/lib/ext.py'));
    await expect(pinCode(dir, scope)).rejects.toThrow(/^code pin: competitions\/a\/lib\/ext\.py is a symlink to .*lib\.py, outside the repository/);
  });
});
