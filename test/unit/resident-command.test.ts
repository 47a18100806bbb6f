// Which calls the resident shell runs as their script inline, which keep a `sh -c` of their own,
// and which stdin it takes as a here-document.
import { describe, expect, it } from 'vitest';
import { HERE_DOCUMENT_MAX, hereDocumentFits, residentCommand } from '../../scripts/lib/ssh/resident-shell.js';

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

describe('hereDocumentFits', () => {
  it('takes text that ends in a newline, up to the limit', () => {
    for (const stdin of ['', 'a\n', '{"x": 1}\n{"y": 2}\n', Buffer.from([0xff, 0x0a]), `${'x'.repeat(HERE_DOCUMENT_MAX - 1)}\n`]) {
      expect(hereDocumentFits(stdin)).toBe(true);
    }
  });

  it('leaves to a channel what a here-document would change or the shell would drop', () => {
    for (const stdin of ['a', 'a\nb', 'nul\0\n', Buffer.from([0x00, 0x0a]), `${'x'.repeat(HERE_DOCUMENT_MAX)}\n`, `${'é'.repeat(HERE_DOCUMENT_MAX / 2)}\n`]) {
      expect(hereDocumentFits(stdin)).toBe(false);
    }
  });
});
