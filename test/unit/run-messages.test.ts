// What the user reads while a run goes: the live status line and the line at an attempt's start.
import { describe, expect, it } from 'vitest';
import type { Project } from '../../scripts/lib/project.js';
import type { RunnerEvent } from '../../scripts/lib/runner/attempt-spec.js';
import { recordEvents, resumeOutlook, statusText } from '../../scripts/lib/runs/drive-run.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';

describe('the live status line', () => {
  it('shows step and loss from the newest metrics line, and what it does not know it leaves out', () => {
    const now = Date.now();
    expect(statusText({ n: 1 }, { metrics: { step: 12, loss: 2.48713 }, last_step: null }, now)).toMatch(/^▸ attempt 1 · step 12 · loss 2\.487 · no checkpoint yet · \d\.\ds$/);
    expect(statusText({ n: 2 }, { metrics: null, last_step: 40 }, now)).toMatch(/^▸ attempt 2 · ckpt 40 · \d\.\ds$/);
  });
});

describe('the line at an attempt start', () => {
  const linesFor = async (events: RunnerEvent[]) => {
    const lines: string[] = [];
    await recordEvents({} as Project, {} as RunRecord, events, (l) => lines.push(l));
    return lines;
  };

  it('says what a resume will do while there is no checkpoint, and restoring for predict', async () => {
    expect(
      await linesFor([
        { type: 'restored', step: null, attempt: 1 },
        { type: 'restored', step: null, attempt: 2 },
        { type: 'restored', step: 7, attempt: 3 },
        { type: 'restored', step: 7, attempt: 'predict' },
        { type: 'restored', step: 4 }, // a runner from before the attempt field
      ]),
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
