// How a verb shows a run it drives: a live status line for a run of one unit, a progress table
// for a sharded one, and a line for everything worth keeping (placement, hosts, checkpoints
// restored, attempts that end, hosts lost, units moved, the merge).
import type { LaunchEvent } from '../actions/launch.js';
import { describeMerge } from './merge-lines.js';
import { describePins } from './describe.js';
import { restoredLine, statusText } from './run-lines.js';
import { lastStep, type RunRecord } from '../runs/run-record.js';
import type { UnitView } from '../runs/supervision.js';
import { LiveTable } from '../ui/live-table.js';
import { formatDuration } from '../ui/format.js';
import { StatusLine } from '../ui/status-line.js';
import { renderTable } from '../ui/table.js';

/**
 * An experiment's last line as one table cell: what a terminal shows of it (the text after its
 * last carriage return: a progress bar's newest state), without escape sequences or other control
 * characters, which would move the cursor or recolour the table, cut to 60 characters, never
 * inside one.
 */
export function lastLineCell(line: string | null): string {
  const shown = (line ?? '').split('\r').filter((part) => part.trim()).at(-1) ?? '';
  const plain = shown.replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, '').replace(/[\x00-\x1f\x7f]/g, ' ');
  return [...plain].slice(0, 60).join('');
}

/** Unit states whose attempt may still be under way: its elapsed time runs to now. */
const UNENDED = new Set(['queued', 'pending', 'running', 'unreachable', 'unknown']);

/** The progress table of a sharded run: one row per shard. */
export function unitTable(units: readonly UnitView[]): string {
  const rows = units.map((u) => {
    // An attempt that ended with no end recorded (its worker lost) has no elapsed time: it is not still counting.
    const end = UNENDED.has(u.state) ? Date.now() : u.ended_at ? Date.parse(u.ended_at) : null;
    const elapsed = u.started_at && end !== null ? formatDuration(end - Date.parse(u.started_at)) : null;
    return [u.unit, u.slot, u.state, u.attempt, u.ckpt, elapsed, lastLineCell(u.last_line)];
  });
  return renderTable(['SHARD', 'HOST', 'STATE', 'ATTEMPT', 'CKPT', 'ELAPSED', 'LAST LINE'], rows);
}

export class RunDisplay {
  readonly line = new StatusLine();
  private table: LiveTable | null = null;
  private run: RunRecord | null = null;
  private last: UnitView[] = [];

  /** `where`: how the run's place reads in its first line (a fleet: `fleet lab`); `locate`: a store key for people */
  constructor(
    private readonly where: string,
    private readonly locate: (key: string) => string,
  ) {}

  get sharded(): boolean {
    return !!this.run?.sharded;
  }

  /** Output of an in-process attempt, scrolling above the live line. */
  echo = (stream: 'stdout' | 'stderr', data: Buffer): void => this.line.write(stream === 'stdout' ? process.stdout : process.stderr, data);

  say(text: string): void {
    if (this.table) this.table.say(text);
    else this.line.say(text);
  }

  private unit(i: number): string {
    return this.sharded ? `shard ${i}: ` : '';
  }

  /** Stops redrawing; a sharded run's final table is printed once where nothing was redrawn. */
  done(): void {
    this.line.done();
    if (!this.table) return;
    this.table.done();
    if (!this.table.interactive && this.last.length) this.table.say(unitTable(this.last));
  }

  handle = (e: LaunchEvent): void => {
    switch (e.type) {
      case 'opened': {
        this.run = e.run;
        if (e.run.sharded) this.table = new LiveTable();
        const where = e.run.sharded ? this.where : e.backend.name;
        if (e.how === 'new') this.say(`run ${e.run.run_id} on ${where}\n  pins: ${describePins(e.run.pins)}`);
        else if (e.how === 'resume') this.say(`resuming run ${e.run.run_id} on ${where}`);
        return;
      }
      case 'placed':
        return this.placed(e);
      case 'prepared':
        return this.say(e.outcome instanceof Error ? `✗ ${e.slot}: ${e.outcome.message.split('\n')[0]}` : `✓ ${e.slot}: ${e.outcome} (${formatDuration(e.ms)})`);
      case 'restored':
        return this.say(this.unit(e.unit) + restoredLine(e.step, e.attempt));
      case 'notice':
        return this.say(`${this.unit(e.unit)}switchyard: ${e.line}`);
      case 'ended':
        if (this.sharded) return this.say(`${e.state === 'succeeded' ? '✓' : '✗'} shard ${e.unit} on ${e.slot}: ${e.state} after ${formatDuration(e.ms)}${e.reason ? ` (${e.reason})` : ''}`);
        if (e.state !== 'succeeded') this.say(`attempt ${e.attempt} ended ${e.state}${e.reason ? `: ${e.reason}` : ''}`);
        return;
      case 'retrying':
        if (!this.sharded) {
          const step = lastStep(this.run!);
          const from = step === null ? 'from the beginning (no checkpoint committed)' : `from checkpoint step ${step}`;
          this.say(`attempt ${e.after.attempt} ${e.after.state}: ${e.after.reason}; starting attempt ${e.next.attempt} on ${e.next.backend} ${from}`);
        }
        return;
      case 'slot-down':
        return this.say(`host ${e.slot} lost: ${e.reason}`);
      case 'slot-refused':
        return this.say(`host ${e.slot} takes no ${this.sharded ? 'shards' : 'attempts'}: ${e.reason}`);
      case 'moved':
        if (this.sharded) this.say(`shard ${e.unit} moved from ${e.from} to ${e.to}${e.resumeStep === null ? ' (starts over: no committed checkpoint here)' : ` (resumes from checkpoint step ${e.resumeStep})`}`);
        return;
      case 'waiting':
        return this.say(`${this.unit(e.unit)}${e.why}`);
      case 'gave-up':
        return this.say(`${this.unit(e.unit)}switchyard: giving up after ${e.attempts} attempts`);
      case 'tick':
        this.last = e.units;
        if (this.table) this.table.update(unitTable(e.units));
        else if (e.units[0] && e.units[0].state === 'running') this.line.update(statusText(e.units[0]));
        return;
      case 'merged':
        for (const l of describeMerge(e.summary, this.locate(e.summary.merged.key))) this.say(l);
        return;
      case 'started':
      case 'opening':
        return;
    }
  };

  private placed(e: Extract<LaunchEvent, { type: 'placed' }>): void {
    if (!this.sharded) {
      for (const r of e.reattached) this.say(`re-attaching to run ${this.run!.run_id}, attempt ${r.attempt} on ${e.backend}`);
      return;
    }
    const hosts = [...new Set(e.units.map((u) => u.slot))];
    const how = e.capacity === 1 ? 'one at a time per host' : e.capacity === Number.MAX_SAFE_INTEGER ? 'all at once' : `up to ${e.capacity} at once per host`;
    this.say(`${this.where}: ${e.units.length} of ${this.run!.units.length} shards on ${hosts.length} host${hosts.length === 1 ? '' : 's'}, ${how}`);
    for (const h of hosts) {
      const mine = e.units.filter((u) => u.slot === h).map((u) => u.unit);
      this.say(`  ${h}: shard${mine.length > 1 ? 's' : ''} ${mine.join(', ')}`);
    }
    for (const r of e.reattached) this.say(`  ${r.slot}: shard ${r.unit} already running (attempt ${r.attempt}), re-attaching`);
  }
}
