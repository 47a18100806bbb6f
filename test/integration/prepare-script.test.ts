// PREPARE_SCRIPT on a real sh: a host's checks before a push, in one call. Its answer decides
// whether an empty copy of the project is filled from the fan-out's tar (which only an empty
// folder may take) or brought up to date by rsync's delta, so "empty" must mean empty: no dot
// file, no dangling link.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PREPARE_SCRIPT } from '../../scripts/lib/remote/scripts.js';

let dir: string;
let node: string;
let runtime: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sy-prepare-'));
  runtime = path.join(dir, 'runtime');
  mkdirSync(runtime);
  node = path.join(runtime, 'node');
  writeFileSync(node, '#!/bin/sh\n');
  chmodSync(node, 0o755);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function prepare(repo: string, checkEmpty = 'check-empty', runtimeNode = node) {
  const r = spawnSync('sh', ['-c', PREPARE_SCRIPT, 'sh', runtimeNode, repo, runtime, checkEmpty], { encoding: 'utf8' });
  return { code: r.status, lines: r.stdout.split('\n').filter(Boolean) };
}

describe('PREPARE_SCRIPT', () => {
  it('makes the repo folder, lists the runtime files and says the folder is empty', () => {
    writeFileSync(path.join(runtime, 'runner-abc.mjs'), '');
    const repo = path.join(dir, 'a/b/repo');
    expect(prepare(repo)).toEqual({ code: 0, lines: [`file ${node}`, `file ${runtime}/runner-abc.mjs`, 'empty'] });
    expect(prepare(repo, '')).toEqual({ code: 0, lines: [`file ${node}`, `file ${runtime}/runner-abc.mjs`] });
  });

  it('does not call a folder empty that holds only a dot file, a ..name, a dangling link or a file named *', () => {
    const cases: [string, (repo: string) => void][] = [
      ['.env', (repo) => writeFileSync(path.join(repo, '.env'), '')],
      ['..x', (repo) => writeFileSync(path.join(repo, '..x'), '')],
      ['.git/', (repo) => mkdirSync(path.join(repo, '.git'))],
      ['dangling link', (repo) => symlinkSync('nowhere', path.join(repo, 'link'))],
      ['*', (repo) => writeFileSync(path.join(repo, '*'), '')],
      ['plain file', (repo) => writeFileSync(path.join(repo, 'train.py'), '')],
    ];
    for (const [what, make] of cases) {
      const repo = path.join(dir, `repo-${what.replace(/\W/g, '_')}`);
      mkdirSync(repo);
      make(repo);
      expect(prepare(repo).lines, what).not.toContain('empty');
    }
  });

  it('exits 3 without a runtime, and 4 naming mkdir\'s status when the folder cannot be made', () => {
    expect(prepare(path.join(dir, 'repo'), 'check-empty', path.join(dir, 'no-node')).code).toBe(3);
    writeFileSync(path.join(dir, 'file'), '');
    expect(prepare(path.join(dir, 'file/repo'))).toEqual({ code: 4, lines: ['mkdir 1'] });
  });
});
