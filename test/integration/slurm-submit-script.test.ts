// SLURM_SUBMIT_SCRIPT submits once per submission: a kept job id is answered, and so is a job
// SLURM knows by the attempt's name (sbatch answered, the submitter died before keeping its
// id); only then does sbatch run. Real sh, with squeue and sbatch stand-ins on the PATH that
// note each call.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SLURM_SUBMIT_SCRIPT } from '../../scripts/lib/slurm/scripts.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sy-submit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** squeue answers `known` for the name asked (nothing when empty); sbatch answers 777. */
function submit(known: string): { out: string; sbatchRan: boolean; named: string } {
  const bin = path.join(dir, 'bin');
  const tool = (name: string, body: string) => {
    writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  };
  spawnSync('mkdir', ['-p', bin]);
  tool('squeue', `printf '%s\\n' "$@" > "${dir}/squeue.args"; [ -n "${known}" ] && echo ${known}; exit 0`);
  tool('sbatch', `touch "${dir}/sbatch.ran"; echo "777;cluster"`);
  const r = spawnSync('sh', ['-c', SLURM_SUBMIT_SCRIPT, 'sh', `${dir}/logs/s.sbatch`, `${dir}/logs/s.jobid`, `${dir}/logs`, 'sy-run-3'], {
    input: '#!/bin/sh\n',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
  expect(r.status, r.stderr.toString()).toBe(0);
  return { out: r.stdout.toString().trim(), sbatchRan: existsSync(path.join(dir, 'sbatch.ran')), named: readFileSync(path.join(dir, 'squeue.args'), 'utf8') };
}

describe('SLURM_SUBMIT_SCRIPT', () => {
  it('finds a job SLURM knows by the name and keeps its id, without sbatch', () => {
    const r = submit('4242');
    expect(r).toMatchObject({ out: '4242', sbatchRan: false });
    expect(r.named).toContain('--name=sy-run-3');
    expect(readFileSync(path.join(dir, 'logs/s.jobid'), 'utf8')).toBe('4242\n');
  });

  it('submits with sbatch when no job has the name, and answers the kept id after', () => {
    expect(submit('')).toMatchObject({ out: '777', sbatchRan: true });
    rmSync(path.join(dir, 'sbatch.ran'));
    expect(submit('')).toMatchObject({ out: '777', sbatchRan: false });
  });
});
