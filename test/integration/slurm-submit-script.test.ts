// SLURM_SUBMIT_SCRIPT submits once per submission: a kept job id is answered, and so is a job
// SLURM knows by the attempt's name (sbatch answered, the submitter died before keeping its
// id); only then are the specs and the script written and sbatch run. Real sh, with squeue and
// sbatch stand-ins on the PATH that note each call.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { slurmSubmitCall, SLURM_SUBMIT_SCRIPT } from '../../scripts/lib/slurm/scripts.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sy-submit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = '#!/bin/bash\n#SBATCH --job-name=sy-run-3\nexec true\n';
// Lines `read` or `printf` could bend: backslashes, a format, leading blanks, an option, shell words.
const SPECS = ['{"unit_id":"run/shards/0","cmd":"a\\\\b \\\\n %s %%"}', '  {"unit_id":"run/shards/1","x":"$(touch pwned) `id` \'q\'"}', '-n'];

/** squeue answers `known` for the name asked (nothing when empty; `fails`: it cannot reach the controller); sbatch answers 777. */
function submit(known: string, specs = SPECS, folders = specs.map((_, i) => path.join(dir, `work/run/shards/${i}/attempts/1`)), logs = path.join(dir, 'logs')) {
  const bin = path.join(dir, 'bin');
  const tool = (name: string, body: string) => {
    writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  };
  mkdirSync(bin, { recursive: true });
  const answer = known === 'fails' ? `echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; exit 1` : `[ -n "${known}" ] && echo ${known}; exit 0`;
  tool('squeue', `printf '%s\\n' "$@" > "${dir}/squeue.args"; ${answer}`);
  tool('sbatch', `cp "$2" "${dir}/sbatch.ran"; pwd > "${dir}/sbatch.pwd"; echo "777;cluster"`);
  const call = slurmSubmitCall({
    sbatchFile: `${logs}/s.sbatch`,
    jobIdFile: `${logs}/s.jobid`,
    logs,
    jobName: 'sy-run-3',
    script: SCRIPT,
    specFile: 'attempt.json',
    attempts: specs.map((spec, i) => ({ dir: folders[i]!, spec })),
  });
  const r = spawnSync('sh', ['-c', SLURM_SUBMIT_SCRIPT, 'sh', ...call.args], { cwd: dir, input: call.stdin, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  const ran = existsSync(path.join(dir, 'sbatch.ran'));
  const submitted = ran ? readFileSync(path.join(dir, 'sbatch.ran'), 'utf8') : null;
  return { code: r.status, stderr: r.stderr.toString(), out: r.stdout.toString().trim(), sbatchRan: ran, submitted, sbatchIn: ran ? readFileSync(path.join(dir, 'sbatch.pwd'), 'utf8').trim() : null, folders };
}

const specIn = (folder: string) => readFileSync(path.join(folder, 'attempt.json'), 'utf8');

describe('SLURM_SUBMIT_SCRIPT', () => {
  it('writes each spec into its folder, one line as sent, then the script, then submits', () => {
    const r = submit('');
    expect(r, r.stderr).toMatchObject({ code: 0, out: '777', sbatchRan: true, submitted: SCRIPT, sbatchIn: dir });
    expect(r.folders.map(specIn)).toEqual(SPECS.map((s) => `${s}\n`));
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
    expect(readFileSync(path.join(dir, 'logs/s.jobid'), 'utf8')).toBe('777\n');
  });

  it('takes paths relative to the folder it starts in, and runs sbatch there (where the job starts)', () => {
    const r = submit('', SPECS.slice(0, 2), ['work/run/shards/0/attempts/1', 'work/run/shards/1/attempts/1'], 'work/run/slurm');
    expect(r, r.stderr).toMatchObject({ code: 0, out: '777', submitted: SCRIPT, sbatchIn: dir });
    expect(r.folders.map((f) => specIn(path.join(dir, f)))).toEqual(SPECS.slice(0, 2).map((s) => `${s}\n`));
    expect(readFileSync(path.join(dir, 'work/run/slurm/s.jobid'), 'utf8')).toBe('777\n');
  });

  it('answers the kept id after, without sbatch', () => {
    expect(submit('')).toMatchObject({ out: '777', sbatchRan: true });
    rmSync(path.join(dir, 'sbatch.ran'));
    expect(submit('')).toMatchObject({ code: 0, out: '777', sbatchRan: false });
  });

  it('finds a job SLURM knows by the name and keeps its id, leaving its specs as they are, without sbatch', () => {
    const folder = path.join(dir, 'work/run/attempts/1');
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, 'attempt.json'), 'written by the submitter that died\n');
    const r = submit('4242', ['{"new":1}'], [folder]);
    expect(r, r.stderr).toMatchObject({ code: 0, out: '4242', sbatchRan: false });
    expect(readFileSync(path.join(dir, 'squeue.args'), 'utf8')).toContain('--name=sy-run-3');
    expect(readFileSync(path.join(dir, 'logs/s.jobid'), 'utf8')).toBe('4242\n');
    expect(specIn(folder)).toBe('written by the submitter that died\n');
  });

  it('a squeue that does not answer: exit 13 with its error, and nothing submitted (a job of that name may exist)', () => {
    const r = submit('fails');
    expect(r.code).toBe(13);
    expect(r.stderr.trim()).toBe('slurm_load_jobs error: Unable to contact slurm controller (connect failure)');
    expect(r.sbatchRan).toBe(false);
    expect(existsSync(path.join(dir, 'logs/s.jobid'))).toBe(false);
  });

  it('a spec it cannot write: exit 11 naming the file, and nothing submitted', () => {
    const folder = path.join(dir, 'work/run/attempts/1');
    mkdirSync(folder, { recursive: true });
    mkdirSync(path.join(folder, 'attempt.json')); // a folder where the spec goes: not even root writes it as a file
    const r = submit('', ['{"a":1}'], [folder]);
    expect(r.code).toBe(11);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(`cannot write ${folder}/attempt.json`);
    expect(r.sbatchRan).toBe(false);
    expect(existsSync(path.join(dir, 'logs/s.jobid'))).toBe(false);
  });

  it('refuses a spec of more than one line before anything runs', () => {
    expect(() => submit('', ['{\n}'])).toThrow(/more than one line/);
  });
});
