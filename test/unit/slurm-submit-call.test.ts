// The pure halves of a SLURM submit: the folders given to SLURM_SUBMIT_SCRIPT relative to one
// (so a thousand fit in one exec), arrays no larger than one call can name, and MaxArraySize
// as `scontrol show config` prints it.
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../scripts/lib/quote.js';
import { CHANNEL_COMMAND_MAX } from '../../scripts/lib/ssh/pool.js';
import { arraySizes, maxArrayTasks, slurmSubmitCall, SLURM_SUBMIT_SCRIPT, SUBMIT_FOLDERS_MAX, underOneFolder } from '../../scripts/lib/slurm/scripts.js';

describe('underOneFolder', () => {
  it('takes the deepest folder holding every path, each path left non-empty', () => {
    expect(underOneFolder(['/a/b/c/x', '/a/b/c/y', '/a/b/d'])).toEqual({ base: '/a/b', rel: ['c/x', 'c/y', 'd'] });
    expect(underOneFolder(['/a/x'])).toEqual({ base: '/a', rel: ['x'] });
    expect(underOneFolder(['/a/x', '/a/x/y'])).toEqual({ base: '/a', rel: ['x', 'x/y'] });
    expect(underOneFolder(['/x', '/y'])).toEqual({ base: '/', rel: ['x', 'y'] });
  });

  it('starts a relative folder with ./ or .. (cd never searches CDPATH for it) and reads paths as normalized', () => {
    expect(underOneFolder(['sw/scratch/r/slurm', 'sw/scratch/r/shards/0/attempts/1'])).toEqual({ base: './sw/scratch/r', rel: ['slurm', 'shards/0/attempts/1'] });
    expect(underOneFolder(['x', 'y'])).toEqual({ base: '.', rel: ['x', 'y'] });
    expect(underOneFolder(['../a/x', '../a//y/'])).toEqual({ base: '../a', rel: ['x', 'y'] });
    expect(underOneFolder(['./a/x/', 'a/./y'])).toEqual({ base: './a', rel: ['x', 'y'] });
  });

  it('refuses absolute and relative paths together', () => {
    expect(() => underOneFolder(['/a/x', 'a/y'])).toThrow(/mixed/);
  });
});

describe('maxArrayTasks', () => {
  it('reads MaxArraySize; 0 (arrays off) is one task a job; absent is null', () => {
    expect(maxArrayTasks('MailProg                = /bin/true\nMaxArraySize            = 1001\nMaxJobCount             = 10000\n')).toBe(1001);
    expect(maxArrayTasks('MaxArraySize = 0\n')).toBe(1);
    expect(maxArrayTasks('MaxJobCount = 10000\n')).toBeNull();
  });
});

describe('arraySizes', () => {
  const logs = '/home/u/sw/scratch/run/slurm';
  const folders = (n: number, name = 'shards') => Array.from({ length: n }, (_, i) => `/home/u/sw/scratch/run/${name}/${i}/attempts/1`);

  it('takes MaxArraySize units an array, the last the rest; none for no units', () => {
    expect(arraySizes(logs, folders(8), 3)).toEqual([3, 3, 2]);
    expect(arraySizes(logs, folders(1002), 1001)).toEqual([1001, 1]);
    expect(arraySizes(logs, [], 1001)).toEqual([]);
  });

  it('past MaxArraySize allows, no more units than one submit call can name; each call an exec carries', () => {
    const long = folders(20_000, `a-search-named-at-length-${'x'.repeat(60)}`);
    const sizes = arraySizes(logs, long, 100_001);
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes.reduce((a, b) => a + b)).toBe(20_000);
    let from = 0;
    for (const size of sizes) {
      const attempts = long.slice(from, (from += size)).map((dir) => ({ dir, spec: '{}' }));
      const call = slurmSubmitCall({ sbatchFile: `${logs}/s.sbatch`, jobIdFile: `${logs}/s.jobid`, logs, jobName: 'sy-run', script: '', specFile: 'attempt.json', attempts });
      const folderBytes = call.args.slice(5).reduce((n, f) => n + Buffer.byteLength(shellQuote([f])) + 1, 0);
      expect(folderBytes).toBeLessThanOrEqual(SUBMIT_FOLDERS_MAX);
      expect(Buffer.byteLength(shellQuote(['sh', '-c', SLURM_SUBMIT_SCRIPT, 'sh', ...call.args]))).toBeLessThan(CHANNEL_COMMAND_MAX);
    }
    // short folders fill an array to MaxArraySize long before the bytes run out
    expect(arraySizes(logs, folders(3000), 1001)).toEqual([1001, 1001, 998]);
  });
});
