// What the user reads while a run goes: the live status line and the line at an attempt's start.
import { describe, expect, it } from 'vitest';
import { restoredLine, resumeOutlook, statusText } from '../../scripts/lib/cli/run-lines.js';

describe('the live status line', () => {
  it('shows step and loss from the newest metrics line, and what it does not know it leaves out', () => {
    const now = Date.now();
    const started_at = new Date(now - 1200).toISOString();
    expect(statusText({ attempt: 1, metrics: { step: 12, loss: 2.48713 }, ckpt: null, started_at }, now)).toMatch(/^▸ attempt 1 · step 12 · loss 2\.487 · no checkpoint yet · 1\.2s$/);
    expect(statusText({ attempt: 2, metrics: null, ckpt: 40, started_at }, now)).toMatch(/^▸ attempt 2 · ckpt 40 · 1\.2s$/);
  });
});

describe('the line at an attempt start', () => {
  it('says what a resume will do while there is no checkpoint, and restoring for predict', () => {
    expect(
      [
        [null, 1],
        [null, 2],
        [7, 3],
        [7, 'predict'],
        [4, undefined], // a runner from before the attempt field
      ].map(([step, attempt]) => restoredLine(step as number | null, attempt as number | 'predict' | undefined)),
    ).toEqual([
      'starting from scratch (no checkpoint yet: until the experiment commits one, a resume starts over from the beginning)',
      'starting over from the beginning: no earlier attempt committed a checkpoint',
      'resuming from committed checkpoint step 7',
      'restoring committed checkpoint step 7',
      'resuming from committed checkpoint step 4',
    ]);
    expect(resumeOutlook(null)).toBe('starts it over from the beginning (no checkpoint committed)');
    expect(resumeOutlook(3)).toBe('resumes it from checkpoint step 3');
  });
});
