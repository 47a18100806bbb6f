// Code and environment pins against the real tools: pinCode's commit and dirty patch from git
// (replayed with git apply), its path scope, and pinEnv's lockfile hash and cached python3 version.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pinCode } from '../../scripts/lib/pins/code-pin.js';
import { codeRestore } from '../../scripts/lib/pins/code-restore.js';
import { pinEnv } from '../../scripts/lib/pins/env-pin.js';
import { run } from '../../scripts/lib/proc.js';
import { CommandError, UserError } from '../../scripts/lib/ui/errors.js';
import { scratchFolders, writeTree } from '../helpers/file-tree.js';

const tempDir = scratchFolders('switchyard-pins-');
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const git = (cwd: string, ...args: string[]) =>
  run(['git', '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd });

describe('pinCode', () => {
  async function repo(): Promise<string> {
    const dir = writeTree(tempDir(), {
      'train.py': 'print(1)\n',
      'data/keep.bin': Buffer.from([0, 255, 1, 254]),
      'gone.txt': 'bye\n',
      '.gitignore': 'ignored.log\n',
    });
    await git(dir, 'init', '-q');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'init');
    return dir;
  }

  /** Every non-ignored file of a work tree, with content. */
  async function treeOf(dir: string): Promise<Record<string, string>> {
    const out = await run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: dir });
    const files: Record<string, string> = {};
    for (const rel of out.stdout.toString().split('\0').filter(Boolean).sort()) {
      try {
        files[rel] = readFileSync(join(dir, rel)).toString('base64');
      } catch {
        // listed in the index but deleted from the work tree
      }
    }
    return files;
  }

  it('gives a null dirty hash for a clean tree', async () => {
    const dir = await repo();
    const head = (await run(['git', 'rev-parse', 'HEAD'], { cwd: dir })).stdout.toString().trim();
    const pin = await pinCode(dir);
    expect(pin).toEqual({ commit: head, dirty_sha256: null, diff: Buffer.alloc(0) });
    writeFileSync(join(dir, 'ignored.log'), 'noise');
    expect((await pinCode(dir)).dirty_sha256).toBeNull();
  });

  it('captures staged, unstaged, untracked and binary changes as a patch git apply replays', async () => {
    const dir = await repo();
    const { commit } = await pinCode(dir);
    writeFileSync(join(dir, 'train.py'), 'print(2)\n'); // unstaged
    writeFileSync(join(dir, 'staged.txt'), 'staged\n');
    await git(dir, 'add', 'staged.txt'); // staged
    writeFileSync(join(dir, 'untracked.bin'), Buffer.from([9, 0, 8, 0, 7]));
    mkdirSync(join(dir, 'new'));
    writeFileSync(join(dir, 'new/untracked.py'), 'x = 1\n'); // untracked
    writeFileSync(join(dir, 'data/keep.bin'), Buffer.from([1, 2, 3, 0, 4])); // binary change
    unlinkSync(join(dir, 'gone.txt'));
    writeFileSync(join(dir, 'ignored.log'), 'not part of the code');
    const statusBefore = (await run(['git', 'status', '--porcelain'], { cwd: dir })).stdout.toString();

    const pin = await pinCode(dir);
    expect(pin.commit).toBe(commit);
    expect(pin.dirty_sha256).toBe(sha(pin.diff));
    expect(pin.diff.toString()).not.toContain('ignored.log');
    // The user's index is untouched.
    expect((await run(['git', 'status', '--porcelain'], { cwd: dir })).stdout.toString()).toBe(statusBefore);
    // Same tree, same hash.
    expect((await pinCode(dir)).dirty_sha256).toBe(pin.dirty_sha256);

    const clone = join(tempDir(), 'clone');
    await run(['git', 'clone', '-q', dir, clone]);
    await run(['git', 'checkout', '-q', commit], { cwd: clone });
    const patch = join(tempDir(), 'code.patch');
    writeFileSync(patch, pin.diff);
    await run(['git', 'apply', patch], { cwd: clone });
    const original = await treeOf(dir);
    expect(original['gone.txt']).toBeUndefined();
    expect(await treeOf(clone)).toEqual(original);
  });

  it('changes the dirty hash for a new untracked file alone', async () => {
    const dir = await repo();
    writeFileSync(join(dir, 'notes.md'), 'hi\n');
    const pin = await pinCode(dir);
    expect(pin.dirty_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(pin.diff.toString()).toContain('notes.md');
  });

  it('sees an edit of the same size whose mtime was put back, and leaves the index as it was', async () => {
    const dir = await repo();
    const file = join(dir, 'train.py');
    const { mtime } = statSync(file);
    writeFileSync(file, 'print(9)\n'); // same size: only ctime (and git's racy check) tell
    utimesSync(file, mtime, mtime);
    const index = readFileSync(join(dir, '.git', 'index'));
    const pin = await pinCode(dir);
    expect(pin.diff.toString()).toContain('+print(9)');
    writeFileSync(join(dir, 'train.py'), 'print(1)\n'); // back as committed: clean, the stat data now stale
    expect((await pinCode(dir)).dirty_sha256).toBeNull();
    expect(readFileSync(join(dir, '.git', 'index'))).toEqual(index); // the user's staging untouched
  });

  it('explains how to fix a directory that is not a repo, or has no commit', async () => {
    const plain = tempDir();
    await expect(pinCode(plain)).rejects.toThrow(UserError);
    await expect(pinCode(plain)).rejects.toThrow(/git init && git add -A && git commit -m init/);
    const empty = tempDir();
    await git(empty, 'init', '-q');
    await expect(pinCode(empty)).rejects.toThrow(/no commits yet.*git commit -m init/);
  });

  it("passes on git's own complaint about a damaged index, not a missing commit", async () => {
    const dir = await repo();
    writeFileSync(join(dir, '.git', 'index'), 'not an index');
    const err = await pinCode(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as Error).message).toMatch(/index/);
    expect((err as Error).message).not.toMatch(/no commits/);
  });

  it('says when git is not installed', async () => {
    const dir = await repo();
    const bin = tempDir();
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const path = process.env.PATH;
    process.env.PATH = bin; // sh, and no git
    try {
      await expect(pinCode(dir)).rejects.toThrow(/git is not installed/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('code pin scope', () => {
  const scope = { paths: ['competitions/a', 'lib/', 'scripts', 'not-there'], exclude: ['competitions/a/data'] };

  async function project(): Promise<string> {
    const dir = writeTree(tempDir(), {
      'competitions/a/train.py': 'print("a")\n',
      'competitions/a/data/x.csv': '1,2\n',
      'competitions/b/train.py': 'print("b")\n',
      'lib/util.py': 'X = 1\n',
      'scripts/runner.ts': 'export {};\n',
      'cluster_fleet_config.ts': "export default { hosts: { h1: { host: '10.0.0.1' } } };\n",
    });
    await git(dir, 'init', '-q');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'init');
    return dir;
  }

  it('ignores changes outside its paths, to the inventory and to the data folder inside them', async () => {
    const dir = await project();
    writeFileSync(join(dir, 'competitions/b/train.py'), 'print("b2")\n');
    writeFileSync(join(dir, 'competitions/b/new.md'), 'notes\n');
    writeFileSync(join(dir, 'cluster_fleet_config.ts'), "export default { hosts: { h1: { host: '10.0.0.2' } } };\n");
    writeFileSync(join(dir, 'competitions/a/data/x.csv'), '3,4\n');
    expect(await pinCode(dir, scope)).toMatchObject({ dirty_sha256: null });
    // An excluded path stays out even below a path that counts (code: ['.']).
    expect(await pinCode(dir, { paths: ['.'], exclude: ['cluster_fleet_config.ts', 'competitions'] })).toMatchObject({ dirty_sha256: null });
    // A scope none of whose paths exists pins the commit alone.
    expect(await pinCode(dir, { paths: ['not-there'], exclude: [] })).toMatchObject({ commit: expect.stringMatching(/^[0-9a-f]{40}$/), dirty_sha256: null });
    // Without a scope the whole tree counts.
    const whole = (await pinCode(dir)).diff.toString();
    for (const f of ['competitions/b/new.md', 'cluster_fleet_config.ts', 'competitions/a/data/x.csv']) expect(whole).toContain(f);
  });

  it('counts changes in the competition folder, declared paths and the project code, and nothing else', async () => {
    const dir = await project();
    writeFileSync(join(dir, 'competitions/b/train.py'), 'print("b2")\n');
    for (const [file, text] of [['lib/util.py', 'X = 2\n'], ['competitions/a/new.py', 'y = 1\n'], ['scripts/runner.ts', 'export const v = 2;\n']]) {
      const before = await pinCode(dir, scope);
      writeFileSync(join(dir, file!), text!);
      const after = await pinCode(dir, scope);
      expect(after.dirty_sha256, file).not.toBe(before.dirty_sha256);
      expect(after.diff.toString()).toContain(file!);
      expect(after.diff.toString()).not.toContain('competitions/b');
    }
  });
});

describe('pinEnv', () => {
  it('hashes the lockfiles by name and content, wherever the experiment lives', async () => {
    const repoRoot = writeTree(tempDir(), { 'package-lock.json': '{}' });
    const exp = writeTree(join(repoRoot, 'competitions/a'), {
      'requirements.txt': 'numpy==1.26.4\n',
      'requirements-dev.txt': 'pytest\n',
      'uv.lock': 'u',
      'train.py': 'not a lockfile',
    });
    const pin = await pinEnv({ repoRoot, experimentDir: exp });
    expect(pin.lockfiles).toEqual([
      'package-lock.json',
      'competitions/a/requirements-dev.txt',
      'competitions/a/requirements.txt',
      'competitions/a/uv.lock',
    ]);
    expect(pin.node).toBe(process.version);
    expect(pin.python === null || /^\d+\.\d+/.test(pin.python)).toBe(true);
    expect(pin.lock_sha256).toMatch(/^[0-9a-f]{64}$/);

    cpSync(exp, join(repoRoot, 'elsewhere/b'), { recursive: true });
    const moved = await pinEnv({ repoRoot, experimentDir: join(repoRoot, 'elsewhere/b') });
    expect(moved.lock_sha256).toBe(pin.lock_sha256);

    writeFileSync(join(exp, 'requirements.txt'), 'numpy==2.0.0\n');
    expect((await pinEnv({ repoRoot, experimentDir: exp })).lock_sha256).not.toBe(pin.lock_sha256);
    writeFileSync(join(exp, 'requirements.txt'), 'numpy==1.26.4\n');
    renameSync(join(exp, 'uv.lock'), join(exp, 'poetry.lock'));
    expect((await pinEnv({ repoRoot, experimentDir: exp })).lock_sha256).not.toBe(pin.lock_sha256);
  });

  it('hashes a symlinked lockfile with its target content', async () => {
    const repoRoot = writeTree(tempDir(), { 'shared/requirements.txt': 'numpy==1.26.4\n', 'competitions/a/train.py': '' });
    const exp = join(repoRoot, 'competitions/a');
    const bare = await pinEnv({ repoRoot, experimentDir: exp });
    symlinkSync('../../shared/requirements.txt', join(exp, 'requirements.txt'));
    const linked = await pinEnv({ repoRoot, experimentDir: exp });
    expect(linked.lockfiles).toEqual(['competitions/a/requirements.txt']);
    expect(linked.lock_sha256).not.toBe(bare.lock_sha256);
    writeFileSync(join(repoRoot, 'shared/requirements.txt'), 'numpy==2.0.0\n');
    expect((await pinEnv({ repoRoot, experimentDir: exp })).lock_sha256).not.toBe(linked.lock_sha256);
    symlinkSync('missing.txt', join(exp, 'requirements-dev.txt')); // dangling: no lockfile
    expect((await pinEnv({ repoRoot, experimentDir: exp })).lockfiles).toEqual(['competitions/a/requirements.txt']);
  });

  it('caches the python version per interpreter and asks again when python3 changes', async () => {
    const root = tempDir();
    const bin = join(root, 'bin');
    mkdirSync(bin);
    const fakePython = (version: string) => {
      writeFileSync(join(bin, 'python3'), `#!/bin/sh\necho "Python ${version}"\n`, { mode: 0o755 });
      utimesSync(join(bin, 'python3'), new Date(), new Date(Date.now() - Math.random() * 1e9));
    };
    const cacheFile = join(root, 'cache', 'interpreters.json');
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}${delimiter}${savedPath}`;
    try {
      fakePython('3.10.1');
      expect((await pinEnv({ repoRoot: root, experimentDir: root, cacheFile })).python).toBe('3.10.1');
      // Same file, same stat: answered from the cache, without running it.
      const cached = JSON.parse(readFileSync(cacheFile, 'utf8'));
      expect(Object.values(cached)).toEqual(['3.10.1']);
      writeFileSync(cacheFile, JSON.stringify(Object.fromEntries(Object.keys(cached).map((k) => [k, '9.9.9']))));
      expect((await pinEnv({ repoRoot: root, experimentDir: root, cacheFile })).python).toBe('9.9.9');
      // A different interpreter (new content, size and mtime) is run again.
      fakePython('3.12.0rc1');
      expect((await pinEnv({ repoRoot: root, experimentDir: root, cacheFile })).python).toBe('3.12.0rc1');
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe('code pin and nested repositories', () => {
  const scope = { paths: ['comp', 'scripts'], exclude: [] };

  /** A project whose comp/vendor is a submodule (of a repository beside it). */
  async function withSubmodule(): Promise<{ dir: string; sub: string }> {
    const sub = writeTree(tempDir(), { 'lib.py': 'V = 1\n' });
    await git(sub, 'init', '-q');
    await git(sub, 'add', '-A');
    await git(sub, 'commit', '-q', '-m', 'sub');
    const dir = writeTree(tempDir(), { 'comp/train.py': 'print(1)\n', 'scripts/run.ts': 'export {};\n' });
    await git(dir, 'init', '-q');
    await git(dir, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub, 'comp/vendor');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'init');
    return { dir, sub: join(dir, 'comp/vendor') };
  }

  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('expected a refusal');
      },
      (err: Error) => {
        expect(err).toBeInstanceOf(UserError);
        expect(err.message.split('\n')).toHaveLength(1);
        return err.message;
      },
    );

  it('refuses a submodule with uncommitted edits or untracked files, in one line naming it', async () => {
    const { dir, sub } = await withSubmodule();
    expect((await pinCode(dir, scope)).dirty_sha256).toBeNull();
    writeFileSync(join(sub, 'lib.py'), 'V = 2\n');
    expect(await refusal(pinCode(dir, scope))).toMatch(/^code pin: comp\/vendor is a git submodule with uncommitted changes; commit them there .*or stash them/);
    await git(sub, 'checkout', '-q', '--', 'lib.py');
    writeFileSync(join(sub, 'new.py'), 'x\n');
    expect(await refusal(pinCode(dir, scope))).toMatch(/comp\/vendor is a git submodule with uncommitted changes/);
    // Outside the scope it is none of the pin's business.
    expect((await pinCode(dir, { paths: ['scripts'], exclude: [] })).dirty_sha256).toBeNull();
  });

  it('pins a clean submodule at a new commit by its commit', async () => {
    const { dir, sub } = await withSubmodule();
    writeFileSync(join(sub, 'lib.py'), 'V = 3\n');
    await git(sub, 'commit', '-q', '-am', 'v3');
    const pin = await pinCode(dir, scope);
    expect(pin.dirty_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(pin.diff.toString()).toContain('Subproject commit');
  });

  it('refuses a git repository of its own inside the scope that is not a submodule, with or without commits', async () => {
    const dir = writeTree(tempDir(), { 'comp/train.py': 'print(1)\n' });
    await git(dir, 'init', '-q');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'init');
    mkdirSync(join(dir, 'comp/emb'));
    await git(join(dir, 'comp/emb'), 'init', '-q');
    writeFileSync(join(dir, 'comp/emb/a.py'), 'a\n');
    expect(await refusal(pinCode(dir, scope))).toMatch(/^code pin: comp\/emb is a git repository of its own, not a submodule/);
    await git(join(dir, 'comp/emb'), 'add', '-A');
    await git(join(dir, 'comp/emb'), 'commit', '-q', '-m', 'e');
    expect(await refusal(pinCode(dir, scope))).toMatch(/comp\/emb is a git repository of its own/);
  });
});

describe('code pin and hidden index entries', () => {
  async function repo(): Promise<string> {
    const dir = writeTree(tempDir(), { 'a.py': 'A = 1\n', 'b.py': 'B = 1\n', 'c.py': 'C = 1\n' });
    await git(dir, 'init', '-q');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'init');
    return dir;
  }

  it('sees edits to files marked assume-unchanged or skip-worktree, and leaves those marks alone', async () => {
    const dir = await repo();
    await git(dir, 'update-index', '--assume-unchanged', 'a.py');
    await git(dir, 'update-index', '--skip-worktree', 'b.py');
    writeFileSync(join(dir, 'a.py'), 'A = 2\n');
    writeFileSync(join(dir, 'b.py'), 'B = 2\n');
    const marks = async () => (await run(['git', 'ls-files', '-v'], { cwd: dir })).stdout.toString();
    const before = await marks();
    const pin = await pinCode(dir);
    expect(pin.diff.toString()).toContain('+A = 2');
    expect(pin.diff.toString()).toContain('+B = 2');
    expect(await marks()).toBe(before); // the user's index keeps its marks
    // A skip-worktree file absent from the work tree (a sparse checkout) is not a deletion.
    writeFileSync(join(dir, 'a.py'), 'A = 1\n');
    writeFileSync(join(dir, 'b.py'), 'B = 1\n');
    await git(dir, 'update-index', '--skip-worktree', 'c.py');
    unlinkSync(join(dir, 'c.py'));
    expect((await pinCode(dir)).dirty_sha256).toBeNull();
  });

  it('remembers an index without marks in the scope, and looks again once the index changes', async () => {
    const dir = await repo();
    const markCache = join(dir, '.switchyard', 'cache', 'index-unmarked');
    const scope = { paths: ['a.py', 'b.py'], exclude: [] };
    expect((await pinCode(dir, scope, { markCache })).dirty_sha256).toBeNull();
    expect(existsSync(markCache)).toBe(true); // nothing marked: remembered
    await git(dir, 'update-index', '--assume-unchanged', 'a.py');
    writeFileSync(join(dir, 'a.py'), 'A = 3\n');
    expect((await pinCode(dir, scope, { markCache })).diff.toString()).toContain('+A = 3');
  });
});

describe('codeRestore', () => {
  it("gives commands that bring a run's code back: changes set aside, a commit this clone lost fetched, its diff applied", async () => {
    const dir = writeTree(tempDir(), { 'train.py': 'print(1)\n' });
    await git(dir, 'init', '-q');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'a');
    const a = (await run(['git', 'rev-parse', 'HEAD'], { cwd: dir })).stdout.toString().trim();
    writeFileSync(join(dir, 'train.py'), 'print(2)\n');
    await git(dir, 'commit', '-q', '-am', 'b');
    writeFileSync(join(dir, 'train.py'), 'print(3)\n');
    const recorded = await pinCode(dir); // commit b, with an uncommitted change
    const diff = join(tempDir(), 'source.diff');
    writeFileSync(diff, recorded.diff);
    // b reaches the remote, then leaves this clone (a rebase, a reset), and the tree moves on.
    const origin = join(tempDir(), 'origin.git');
    await run(['git', 'clone', '-q', '--bare', dir, origin]);
    await git(dir, 'remote', 'add', 'origin', origin);
    await git(dir, 'reset', '-q', '--hard', a);
    await git(dir, 'reflog', 'expire', '--expire=now', '--all');
    await git(dir, 'gc', '-q', '--prune=now');
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const here = await pinCode(dir);
    expect(here.commit).toBe(a);

    const commands = await codeRestore(dir, recorded, here, diff);
    expect(commands).toBe(`git stash -u && git fetch origin ${recorded.commit} && git checkout ${recorded.commit.slice(0, 12)} && git apply ${diff}`);
    const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' };
    await run(['sh', '-c', commands], { cwd: dir, env });
    const restored = await pinCode(dir);
    expect({ commit: restored.commit, dirty_sha256: restored.dirty_sha256 }).toEqual({ commit: recorded.commit, dirty_sha256: recorded.dirty_sha256 });
    // The code matches, so nothing is asked of it.
    expect(await codeRestore(dir, recorded, restored, diff)).toBe('');
  });
});
