// SLURM_CANCEL_SCRIPT and SLURM_KILL_SCRIPT take many jobs in one call (a stop of a run asks all
// of its units at once): each job gets its stop request and its USR1, a job that cannot be
// signalled yet (pending) is cancelled outright. Real sh, with a scancel stand-in on the PATH
// that notes each call and refuses to signal job 8.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STOP_REQUEST } from '../../scripts/lib/runner/attempt-spec.js';
import { SLURM_CANCEL_SCRIPT, SLURM_KILL_SCRIPT } from '../../scripts/lib/slurm/scripts.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sy-cancel-'));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'scancel'), `#!/bin/sh\necho "$*" >> "${dir}/scancel.calls"\ncase "$*" in *--signal*" 8") exit 1;; esac\nexit 0\n`);
  chmodSync(path.join(bin, 'scancel'), 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(script: string, args: string[]): string[] {
  const r = spawnSync('sh', ['-c', script, 'sh', ...args], { env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` } });
  expect(r.status, r.stderr.toString()).toBe(0);
  const calls = path.join(dir, 'scancel.calls');
  return existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [];
}

describe('SLURM_CANCEL_SCRIPT', () => {
  it('stop: a stop request in each folder (made where missing), USR1 to each job, a pending one cancelled', () => {
    const folders = ['a', 'b', 'c d'].map((unit) => path.join(dir, unit, 'attempts/1'));
    mkdirSync(folders[0]!, { recursive: true });
    const calls = run(SLURM_CANCEL_SCRIPT, ['stop', folders[0]!, '7_0', folders[1]!, '8', folders[2]!, '7_2']);
    for (const f of folders) expect(existsSync(path.join(f, STOP_REQUEST))).toBe(true);
    expect(calls).toEqual(['--signal=USR1 --batch 7_0', '--signal=USR1 --batch 8', '8', '--signal=USR1 --batch 7_2']);
  });

  it('preempt: USR1 alone, no stop request; kill: scancel each now', () => {
    const folder = path.join(dir, 'a/attempts/1');
    expect(run(SLURM_CANCEL_SCRIPT, ['preempt', folder, '7', folder, '9'])).toEqual(['--signal=USR1 --batch 7', '--signal=USR1 --batch 9']);
    expect(existsSync(folder)).toBe(false);
    rmSync(path.join(dir, 'scancel.calls'));
    expect(run(SLURM_CANCEL_SCRIPT, ['kill', folder, '7', folder, '9'])).toEqual(['7', '9']);
  });
});

describe('SLURM_KILL_SCRIPT', () => {
  it('cancels every job given with one scancel, and says nothing of those already gone', () => {
    expect(run(SLURM_KILL_SCRIPT, ['7_0', '7_1', '8'])).toEqual(['7_0 7_1 8']);
  });
});
