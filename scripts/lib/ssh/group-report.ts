// sshd refuses to signal a root login's command (no privilege separation for root), so the pool
// ends a remote command by killing its process group over another channel. The command reports
// that group first thing: sshd starts each session's command in a new session, so the login
// shell's pid, which `exec sh` keeps, is the group's id; a non-interactive sh does no job
// control, so everything it starts stays in that group. The login shell only sees `exec` and
// quoted words, which fish and csh read alike.
import { randomBytes } from 'node:crypto';
import { shellQuote } from '../quote.js';
import type { StreamFilter } from './channel.js';

/** `token`'s report in `text`: the group it names (NaN where none is safe to kill), and where it lies. */
export function findGroupReport(token: string, text: Buffer): { pgid: number; start: number; end: number } | null {
  const m = new RegExp(`${token} (\\d+)\\n`).exec(text.toString('latin1'));
  if (!m) return null;
  // Never 0 or 1: `kill -- -1` would reach every process of the user, `-0` the killer's own group.
  const pgid = Number(m[1]);
  return { pgid: pgid > 1 ? pgid : Number.NaN, start: m.index, end: m.index + m[0].length };
}

const NOTHING = Buffer.alloc(0);

/**
 * argv as the command of a channel of its own: an sh reports its process group on stderr, then
 * execs argv, which so stays what it was without the report (the session's leader, sshd's child,
 * its exit status or signal told by sshd); argv[0] is a program, not a shell builtin. As a
 * StreamFilter of that stderr it holds the bytes back until the report has come and passes them
 * on without it, so the caller sees the command's output byte for byte (and the login shell's,
 * before it).
 */
export class GroupReportingCommand implements StreamFilter {
  /** the command line for the channel */
  readonly line: string;
  /** the command's process group, once reported (NaN: none safe to kill) */
  pgid?: number;
  private readonly token = randomBytes(8).toString('hex');
  private held: Buffer[] = [];
  private readonly waiting: ((pgid: number) => void)[] = [];

  constructor(argv: readonly string[]) {
    this.line = `exec sh -c 'echo ${this.token} $$ >&2; exec "$@"' sh ${shellQuote(argv)}`;
  }

  /** Calls `fn` with the group once it has been reported: now, if it has. */
  whenReported(fn: (pgid: number) => void): void {
    if (this.pgid === undefined) this.waiting.push(fn);
    else fn(this.pgid);
  }

  take(chunk: Buffer): Buffer {
    if (this.pgid !== undefined) return chunk;
    this.held.push(chunk);
    const text = Buffer.concat(this.held);
    const report = findGroupReport(this.token, text);
    if (!report) return NOTHING;
    this.held = [];
    this.pgid = report.pgid;
    for (const fn of this.waiting.splice(0)) fn(report.pgid);
    return Buffer.concat([text.subarray(0, report.start), text.subarray(report.end)]);
  }

  /** What is still held back when stderr ends without a report (the login shell's words). */
  end(): Buffer {
    const rest = Buffer.concat(this.held);
    this.held = [];
    return rest;
  }
}
