// The pure halves of a SLURM submit: the folders given to SLURM_SUBMIT_SCRIPT relative to one
// (so a thousand fit in one exec), and MaxArraySize as `scontrol show config` prints it.
import { describe, expect, it } from 'vitest';
import { maxArrayTasks, underOneFolder } from '../../scripts/lib/slurm/scripts.js';

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
