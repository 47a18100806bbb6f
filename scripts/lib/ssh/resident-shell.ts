// One long-lived `sh` on a pooled connection that runs short commands one after another.
//
// Opening an exec channel costs sshd a new session (fork, environment, login shell): ~50 ms of
// the ~55 ms a pooled poll took. A command written to a shell that is already there costs only
// its own processes. Each command runs in a subshell, so no state (cwd, variables) leaks from
// one call to the next, and its end is a marker line with its exit status on stdout and a
// marker line on stderr: 128 random bits, so no output can forge one. The subshell's stdin is
// /dev/null, or the call's stdin where that is text: it goes with the command as a
// here-document (hereDocumentFits), so a submit's specs or a file's text cost no session either.
// A call that only the shell can take (a command too long for a channel) waits its turn.
//
// The shell reports its process group once, as it starts (group-report.ts: sshd makes each
// session's command a group of its own, and every command's subshell stays in it): sshd refuses to
// signal a root login's command, so the pool ends a timed-out call by killing that group over
// another channel.
import { randomBytes } from 'node:crypto';
import type { Client, ClientChannel } from 'ssh2';
import { shellQuote } from '../quote.js';
import { ChannelLostError, openExecChannel, stopChannel, type ExecResult } from './channel.js';
import { findGroupReport } from './group-report.js';

/**
 * The command line that runs argv in the resident shell. `sh -c <script> sh <args>` runs as
 * the script itself in the command's subshell, its arguments set and the script eval'd (a
 * syntax error ends the subshell, never the resident shell): one process start fewer, several
 * ms on a busy host. What could tell the two apart stays with `sh -c`: a script that reads
 * `$$` or `$PPID` (the subshell has the resident shell's), or is named other than `sh` ($0).
 */
export function residentCommand(argv: readonly string[]): string {
  const [sh, flag, script, name, ...args] = argv;
  const inline = sh === 'sh' && flag === '-c' && script !== undefined && (name === undefined || name === 'sh') && !/\$\$|\$\{?PPID/.test(script);
  return inline ? `set -- ${shellQuote(args)}\neval ${shellQuote([script])}` : shellQuote(argv);
}

/** The most stdin a call hands the resident shell: the shell parses all of it before it runs the command. */
export const HERE_DOCUMENT_MAX = 256 * 1024;

/**
 * Whether stdin can go to the resident shell as a here-document and arrive unchanged: no NUL
 * (a shell drops it), ending in a newline (a here-document's last line always ends in one),
 * at most HERE_DOCUMENT_MAX bytes. Other stdin (a tar, gzip) takes a channel of its own.
 */
export function hereDocumentFits(stdin: string | Buffer): boolean {
  if (typeof stdin === 'string') return Buffer.byteLength(stdin) <= HERE_DOCUMENT_MAX && (stdin === '' || stdin.endsWith('\n')) && !stdin.includes('\0');
  return stdin.length <= HERE_DOCUMENT_MAX && (stdin.length === 0 || stdin.at(-1) === 0x0a) && !stdin.includes(0);
}

/** A call that waits for the shell: `signal` takes it out of the line; `started` is told when it runs. */
export interface Turn {
  signal: AbortSignal;
  started(): void;
}

interface Waiting {
  command: string;
  stdin?: string | Buffer;
  turn: Turn;
  resolve(r: ExecResult): void;
  reject(err: Error): void;
}

interface Pending {
  marker: string;
  out: Buffer[];
  err: Buffer[];
  code?: number;
  /** bytes of marker at the end of stdout and of stderr, once each has come */
  outCut: number;
  errCut?: number;
  resolve(r: ExecResult): void;
  reject(err: Error): void;
}

/** The last `n` bytes of the chunks (fewer when there are fewer), without joining them all. */
function tailOf(chunks: readonly Buffer[], n: number): Buffer {
  let i = chunks.length;
  for (let len = 0; i > 0 && len < n; ) len += chunks[--i]!.length;
  const t = Buffer.concat(chunks.slice(i));
  return t.subarray(Math.max(0, t.length - n));
}

/** The chunks joined, less the last `cut` bytes (the end marker). */
function withoutTail(chunks: readonly Buffer[], cut: number): string {
  const all = Buffer.concat(chunks);
  return all.subarray(0, all.length - cut).toString('utf8');
}

export class ResidentShell {
  /** the remote process group every command of this shell runs in, once reported (NaN: none to kill safely) */
  pgid?: number;
  /** stdout before the shell's group report */
  private beforeReport: Buffer[] = [];
  private pending: Pending | null = null;
  /** calls that wait for the shell, in the order they came */
  private readonly waiting: Waiting[] = [];
  private closed = false;
  /** the channel has closed */
  private gone = false;
  private readonly ended: (() => void)[] = [];

  private constructor(
    private readonly channel: ClientChannel,
    private readonly reportToken: string,
  ) {
    channel.on('data', (b: Buffer) => this.onStdout(b));
    channel.stderr.on('data', (b: Buffer) => this.onData(b, 'err'));
    channel.on('close', () => {
      this.gone = true;
      this.fail(new ChannelLostError('the resident shell ended'));
      for (const fn of this.ended.splice(0)) fn();
    });
  }

  /** Calls `fn` once the shell's channel has closed, for whatever reason. */
  onEnd(fn: () => void): void {
    if (this.gone) fn();
    else this.ended.push(fn);
  }

  static async open(client: Client, timeoutMs: number): Promise<ResidentShell> {
    // sh's $$ is the login shell's pid (exec keeps it), which sshd made a process group leader.
    // The login shell itself only sees quoted words, which fish and csh read alike.
    const token = randomBytes(8).toString('hex');
    const { channel } = await openExecChannel(client, `exec sh -c 'echo ${token} $$; exec sh'`, timeoutMs);
    return new ResidentShell(channel, token);
  }

  /** True while a command runs: the caller opens a channel of its own instead of waiting. */
  get busy(): boolean {
    return this.pending !== null;
  }

  get alive(): boolean {
    return !this.closed;
  }

  /**
   * Runs one shell command line (already quoted) and buffers its output. Its stdin is empty, or
   * `stdin` (one that hereDocumentFits) as a here-document, ended by the call's marker. A busy
   * shell refuses the call, unless it comes with a `turn`: then it runs once the calls before
   * it have ended, or fails with the turn's signal's reason if that aborts first.
   */
  run(command: string, stdin?: string | Buffer, turn?: Turn): Promise<ExecResult> {
    if (this.closed) return Promise.reject(new ChannelLostError('the resident shell ended'));
    if (this.pending && !turn) return Promise.reject(new Error('the resident shell is busy'));
    return new Promise<ExecResult>((resolve, reject) => {
      if (!this.pending) return this.start(command, stdin, resolve, reject);
      const waiting: Waiting = { command, stdin, turn: turn!, resolve, reject };
      this.waiting.push(waiting);
      turn!.signal.addEventListener('abort', () => {
        const i = this.waiting.indexOf(waiting);
        if (i < 0) return; // already running, or ended
        this.waiting.splice(i, 1);
        reject(turn!.signal.reason as Error);
      }, { once: true });
    });
  }

  private start(command: string, stdin: string | Buffer | undefined, resolve: (r: ExecResult) => void, reject: (err: Error) => void): void {
    const marker = randomBytes(16).toString('hex');
    this.pending = { marker, out: [], err: [], outCut: 0, resolve, reject };
    // The leading newline lets output that does not end in one still end before the marker.
    const input = stdin === undefined ? '</dev/null' : `<<'${marker}'`;
    this.channel.write(`(\n${command}\n) ${input}; printf '\\n%s %d\\n' ${marker} $?; printf '\\n%s\\n' ${marker} >&2\n`);
    if (stdin !== undefined) {
      this.channel.write(stdin);
      this.channel.write(`${marker}\n`);
    }
  }

  /** Ends the shell and whatever it runs; a pending call fails. */
  close(): void {
    if (this.closed) return;
    stopChannel(this.channel, 'KILL');
    this.fail(new ChannelLostError('the resident shell was closed'));
  }

  /** stdout: the group report first (and whatever the login printed before it, dropped), then the commands'. */
  private onStdout(b: Buffer): void {
    if (this.pgid !== undefined) return this.onData(b, 'out');
    this.beforeReport.push(b);
    const text = Buffer.concat(this.beforeReport);
    const report = findGroupReport(this.reportToken, text);
    if (!report) return;
    this.pgid = report.pgid;
    this.beforeReport = [];
    if (report.end < text.length) this.onData(text.subarray(report.end), 'out');
  }

  private onData(b: Buffer, from: 'out' | 'err'): void {
    const p = this.pending;
    if (!p) return;
    (from === 'out' ? p.out : p.err).push(b);
    // Each stream ends with its marker line and nothing after it: only the tail is looked at.
    if (from === 'out' && p.code === undefined) {
      const tail = tailOf(p.out, p.marker.length + 6).toString('latin1');
      const m = new RegExp(`\\n${p.marker} (\\d+)\\n$`).exec(tail);
      if (!m) return;
      p.code = Number(m[1]);
      p.outCut = m[0].length;
    } else if (from === 'err' && p.errCut === undefined) {
      const end = `\n${p.marker}\n`;
      if (tailOf(p.err, end.length).toString('latin1') !== end) return;
      p.errCut = end.length;
    }
    if (p.code === undefined || p.errCut === undefined) {
      // More is on its way. sshd (no tty: Nagle's algorithm on) holds a small packet back until
      // the one before is ACKed, and our ACK waits up to 40 ms unless data goes back with it:
      // an empty line, which the shell reads as nothing once the command is done.
      this.channel.write('\n');
      return;
    }
    this.pending = null;
    p.resolve({ code: p.code, stdout: withoutTail(p.out, p.outCut), stderr: withoutTail(p.err, p.errCut) });
    const next = this.waiting.shift();
    if (next) {
      next.turn.started();
      this.start(next.command, next.stdin, next.resolve, next.reject);
    }
  }

  private fail(err: Error): void {
    this.closed = true;
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}
