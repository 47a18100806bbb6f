// Which calls the resident shell runs as their script inline, and which keep a `sh -c` of their own.
import { describe, expect, it } from 'vitest';
import { residentCommand } from '../../scripts/lib/ssh/resident-shell.js';

describe('residentCommand', () => {
  it('runs a `sh -c` script named sh inline: its arguments set, the script eval\'d', () => {
    expect(residentCommand(['sh', '-c', 'echo "$1"', 'sh', "it's"])).toBe(`set -- 'it'\\''s'\neval 'echo "$1"'`);
    expect(residentCommand(['sh', '-c', 'true'])).toBe('set -- \neval true');
  });

  it('keeps a shell of its own where inline would differ: $$, $PPID, another name', () => {
    for (const argv of [
      ['sh', '-c', 'echo $$ > pid; exec sleep 9'],
      ['sh', '-c', 'kill ${PPID}'],
      ['sh', '-c', 'echo $PPID'],
      ['sh', '-c', 'echo "$0"', 'runner'],
      ['bash', '-c', 'true'],
      ['tmux', 'ls'],
    ]) {
      expect(residentCommand(argv)).not.toMatch(/^set -- /);
    }
  });
});
