// live.json: what a poll shows of a running attempt, kept by its runner so that a poll reads one
// small file with the shell's own `read` where it would start a `tail` for each of events.jsonl,
// metrics.jsonl and the newer log (a few ms each on a busy host, every attempt, every tick).
// It also names the runner's process so that a poll can see it live without asking tmux.
// A view, not a record: written whole (temp + rename) but not fsynced, never mirrored to the
// store, and read only while status.json says the attempt runs. A poll that finds it missing,
// or a runner gone, reads the files themselves.
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { procStatFields } from '../process-alive.js';
import { EVENTS_FILE, LIVE_FILE } from './attempt-spec.js';
import { fileTail } from './jsonl.js';

/** As the poll's own reading of a log: its last non-empty line within its last 4 KiB. */
const LOG_TAIL_BYTES = 4096;
/**
 * The view stays small because a poll's shell reads it a byte per system call (dash's `read`):
 * a last line keeps its first 512 characters, and a metrics line past 2 KiB is left out, for
 * the poll to read from metrics.jsonl itself.
 */
const LAST_LINE_MAX = 512;
const METRICS_LINE_MAX = 2048;

export interface LiveView {
  /** lines in events.jsonl: the poll reads the file only past what it has read, and only when this is more */
  events: number;
  /** the runner's process, as /proc names it: pid, boot and start time (absent where there is no /proc) */
  pid: number;
  boot_id?: string;
  start_ticks?: string;
  /** the newest complete line of metrics.jsonl; absent when too long for the view */
  metrics?: string | null;
  /** the last non-empty line of the log written last (a line of spaces counts as empty) */
  last_line: string | null;
}

/** The last line of `text` holding more than spaces, as the poll's shell finds it. */
function lastNonEmptyLine(text: string): string | null {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) if (/[^ ]/.test(lines[i]!)) return lines[i]!;
  return null;
}

/**
 * The newest complete line of a file of `size` bytes (one still being written is not one yet),
 * read from its end; undefined when that line is longer than `max` bytes or starts further back.
 */
function newestCompleteLine(file: string, size: number, max: number): string | null | undefined {
  const tail = fileTail(file, max + 2); // the line, its newline, and the newline before it
  const whole = tail.length === size;
  const end = tail.lastIndexOf(0x0a);
  if (end < 0) return whole ? null : undefined;
  const before = tail.lastIndexOf(0x0a, end - 1);
  if (before < 0 && !whole) return undefined;
  return tail.subarray(before + 1, end).toString('utf8') || null;
}

/** This process as /proc tells it apart from any other, ever: a pid is reused, its start time and boot are not. */
function processIdentity(): Pick<LiveView, 'boot_id' | 'start_ticks'> {
  try {
    const ticks = procStatFields('self')?.[19];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return ticks && /^\d+$/.test(ticks) && boot ? { boot_id: boot, start_ticks: ticks } : {};
  } catch {
    return {};
  }
}

/** Keeps an attempt folder's live.json as the runner writes its events, logs and metrics. */
export class AttemptLive {
  private readonly file: string;
  private readonly view: LiveView;
  /** each log's last bytes, and which log was written last */
  private readonly logs: Record<'stdout' | 'stderr', Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  private newer: 'stdout' | 'stderr' = 'stdout';
  private metricsSize = -1;
  private dirty = true;
  /** a write failed: the file is removed and left so, and polls read the files themselves */
  private off = false;

  /**
   * Starts the view from the attempt folder as it is (a rerun continues its files): counts its
   * events and reads its logs' ends, then writes it. Events appended after this are counted.
   */
  static begin(dir: string): AttemptLive {
    const live = new AttemptLive(dir);
    try {
      const events = fileTail(path.join(dir, EVENTS_FILE), Number.MAX_SAFE_INTEGER);
      for (let i = events.indexOf(0x0a); i >= 0; i = events.indexOf(0x0a, i + 1)) live.view.events++;
      for (const stream of ['stdout', 'stderr'] as const) live.logs[stream] = fileTail(path.join(dir, `${stream}.log`), LOG_TAIL_BYTES);
    } catch {
      live.stop();
    }
    live.refresh();
    return live;
  }

  private constructor(private readonly dir: string) {
    this.file = path.join(dir, LIVE_FILE);
    this.view = { events: 0, pid: process.pid, ...processIdentity(), metrics: null, last_line: null };
  }

  /** An event line was appended: written at once, so a poll never skips an event the file holds for long. */
  event(): void {
    this.view.events++;
    this.dirty = true;
    this.write();
  }

  /** Bytes written to a log. */
  output(stream: 'stdout' | 'stderr', b: Buffer): void {
    // a copy of the end alone: a chattering experiment's chunks are not joined, nor kept
    const kept = this.logs[stream];
    const keep = Math.max(0, Math.min(kept.length, LOG_TAIL_BYTES - b.length));
    this.logs[stream] = Buffer.concat([kept.subarray(kept.length - keep), b.subarray(Math.max(0, b.length - LOG_TAIL_BYTES))]);
    this.newer = stream;
    this.dirty = true;
  }

  /** Every sync tick: picks up the newest metrics line, and writes the view when anything changed. */
  refresh(): void {
    if (this.off) return;
    const metrics = path.join(this.dir, 'metrics.jsonl');
    try {
      const size = statSync(metrics, { throwIfNoEntry: false })?.size ?? 0;
      if (size !== this.metricsSize) {
        this.metricsSize = size;
        this.view.metrics = newestCompleteLine(metrics, size, METRICS_LINE_MAX);
        this.dirty = true;
      }
    } catch {
      return this.stop();
    }
    this.write();
  }

  private write(): void {
    if (this.off || !this.dirty) return;
    this.view.last_line = lastNonEmptyLine(this.logs[this.newer].toString('utf8'))?.slice(0, LAST_LINE_MAX) ?? null;
    try {
      writeFileSync(`${this.file}.tmp`, JSON.stringify(this.view, null, 2) + '\n');
      renameSync(`${this.file}.tmp`, this.file);
      this.dirty = false;
    } catch {
      this.stop();
    }
  }

  /** A stale view would hide new events from polls: none is better (a full disk, say). Never throws: the attempt goes on. */
  private stop(): void {
    this.off = true;
    for (const f of [this.file, `${this.file}.tmp`]) {
      try {
        rmSync(f, { force: true });
      } catch {
        // a read-only folder: the runner's next write of its own ends the attempt
      }
    }
  }
}
