// SLURM_FIND_SCRIPT looks for submissions as SLURM_SUBMIT_SCRIPT would find them, and changes
// nothing: a kept job id is answered without asking SLURM, else the id of a job SLURM knows by
// the name, else `-`; a squeue that fails ends the script with its code, so that "not found"
// is never said of a cluster that did not answer. Real sh, with a squeue stand-in on the PATH
// that notes each call.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SLURM_FIND_SCRIPT } from '../../scripts/lib/slurm/scripts.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sy-find-'));
  mkdirSync(path.join(dir, 'bin'));
  mkdirSync(path.join(dir, 'logs'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** squeue answers, for a name, the lines `known` has for it (two for an array), or exits `fail`. */
function find(args: string[], known: Record<string, string> = {}, fail = 0) {
  const answers = Object.entries(known).map(([name, ids]) => `  --name=${name}) printf '${ids}' ;;`).join('\n');
  writeFileSync(path.join(dir, 'bin/squeue'), `#!/bin/sh\necho "$*" >> "${dir}/squeue.calls"\n[ ${fail} = 0 ] || { echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit ${fail}; }\ncase "$3" in\n${answers}\nesac\nexit 0\n`);
  chmodSync(path.join(dir, 'bin/squeue'), 0o755);
  const r = spawnSync('sh', ['-c', SLURM_FIND_SCRIPT, 'sh', ...args], { cwd: dir, env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` } });
  const calls = path.join(dir, 'squeue.calls');
  return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString(), squeue: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [] };
}

const idFile = (name: string) => path.join(dir, 'logs', `${name}.jobid`);

describe('SLURM_FIND_SCRIPT', () => {
  it('a line per submission: the kept id (SLURM not asked), else the job SLURM knows by the name, else -', () => {
    writeFileSync(idFile('a'), '41\n');
    const r = find([idFile('a'), 'sy-a', idFile('b'), 'sy-b', idFile('c'), 'sy-c'], { 'sy-b': '42\\n42\\n' });
    expect(r).toEqual({ code: 0, out: '41\n42\n-\n', err: '', squeue: ['-h --states=all --name=sy-b -o %F', '-h --states=all --name=sy-c -o %F'] });
    expect(readdirSync(path.join(dir, 'logs'))).toEqual(['a.jobid']); // nothing kept for b: it writes nothing
  });

  it('an empty id file is no id: SLURM is asked', () => {
    writeFileSync(idFile('a'), '');
    expect(find([idFile('a'), 'sy-a'], { 'sy-a': '43\\n' })).toMatchObject({ code: 0, out: '43\n' });
  });

  it('a name is an argument, never script text', () => {
    const name = `$(touch ${dir}/pwned) \`id\` 'q'`;
    expect(find([idFile('x'), name])).toMatchObject({ code: 0, out: '-\n' });
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
  });

  it('squeue failing (the controller down) ends it with squeue\'s code and error, whatever was found before', () => {
    writeFileSync(idFile('a'), '41\n');
    const r = find([idFile('a'), 'sy-a', idFile('b'), 'sy-b', idFile('c'), 'sy-c'], {}, 1);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe('slurm_load_jobs error: Unable to contact slurm controller');
    expect(r.squeue).toHaveLength(1); // it stops at the first failure
  });
});
