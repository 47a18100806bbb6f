// What the user reads while a run goes: the live status line and the line at an attempt's start.
import { describe, expect, it } from 'vitest';
import { unitTable } from '../../scripts/lib/cli/run-display.js';
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

describe('the progress table of a sharded run', () => {
  const shard = (last_line: string) => ({
    unit: 0,
    backend: 'fleet',
    slot: 'h1',
    state: 'running',
    attempt: 1,
    step: null,
    ckpt: 2,
    started_at: null,
    ended_at: null,
    last_line,
    metrics: null,
  });

  it('shows a progress bar\'s newest state as one clean cell: no carriage return or escape sequence reaches the terminal', () => {
    const table = unitTable([shard(' 10%|#    | 1/10\r\x1b[32m 20%|##   | 2/10\x1b[0m\r')]);
    expect(table).not.toMatch(/[\r\x1b]/);
    expect(table.split('\n')[1]).toMatch(/^0 +h1 +running +1 +2 +- + 20%\|## +\| 2\/10$/);
  });

  it('cuts a long last line to 60 characters, never inside one', () => {
    const cell = unitTable([shard(`${'a'.repeat(59)}😀 and more`)]).split('\n')[1]!;
    expect(cell.endsWith(`${'a'.repeat(59)}😀`)).toBe(true);
  });

  it('counts a running shard\'s time to now, an ended one\'s to its end, and none for one lost with no end recorded', () => {
    const started_at = new Date(Date.now() - 3_600_000).toISOString();
    const row = (state: string, ended_at: string | null) => unitTable([{ ...shard(''), state, started_at, ended_at }]).split('\n')[1]!;
    expect(row('running', null)).toMatch(/^0 +h1 +running +1 +2 +(59m59s|1h00m)/);
    expect(row('succeeded', new Date(Date.parse(started_at) + 4_000).toISOString())).toMatch(/^0 +h1 +succeeded +1 +2 +4\.0s/);
    expect(row('lost', null)).toMatch(/^0 +h1 +lost +1 +2 +-$/);
  });
});
