// A pool of ssh2 connections, one per (user, host, port, identity, known_hosts): many calls share
// one connection, a dead one is replaced on the next call, a timed-out call never holds its caller
// past its limit, and every failure is one SshError line that names the host.
import { setMaxListeners } from 'node:events';
import type { Client, SFTPWrapper } from 'ssh2';
import {
  ChannelLostError,
  collectExec,
  openExecChannel,
  openSftpChannel,
  readChannel,
  stopChannel,
  type ExecChannel,
  type ExecResult,
} from './channel.js';
import { openConnection, type ConnectOptions } from './connect.js';
import { GroupReportingCommand } from './group-report.js';
import { capInFlight, capsInFlight } from './in-flight.js';
import { ResidentShell, hereDocumentFits, residentCommand } from './resident-shell.js';
import { shellQuote } from '../quote.js';
import { SshError, connectError, describeTarget } from './ssh-errors.js';
import { SERVER_ALIVE_COUNT_MAX, SERVER_ALIVE_INTERVAL_SEC, type SshTarget } from './target.js';

export type { ExecResult } from './channel.js';

export interface PoolOptions {
  /** keepalive every this many ms on idle connections (default 15 000) */
  keepaliveIntervalMs?: number;
  /** unanswered keepalives before a connection counts as dead (default 3) */
  keepaliveCountMax?: number;
  /** channels open at once on one connection; sshd's MaxSessions defaults to 10 (default 8) */
  maxChannelsPerConnection?: number;
  /** ssh-agent socket for targets without an identity file (default $SSH_AUTH_SOCK) */
  agentSocket?: string;
}

export interface ExecOptions {
  /** the whole call (connect included) fails after this many ms; the connection leaves the pool */
  timeoutMs?: number;
  stdin?: string | Buffer;
}

interface Conn {
  key: string;
  client: Client;
  active: number;
  waiters: (() => void)[];
  /** out of the pool: no new calls; destroyed once its last channel ends */
  retired: boolean;
  /** the connection's resident shell (it holds one of `active`), once open */
  shell?: ResidentShell;
  /** set while the resident shell opens; a failed open leaves none and the next call tries again */
  shellOpening?: Promise<ResidentShell | null>;
  /** a channel sending stdin keeps few bytes unacknowledged (in-flight.ts), not the server's whole window */
  capsInFlight: boolean;
}

interface Call {
  conn?: Conn;
  /** ends the command of a call on a channel of its own, once that channel is open */
  stopCommand?: () => void;
  shell?: ResidentShell;
  /** set while the call waits for a busy resident shell; aborting it leaves the line */
  waiting?: AbortController;
  stopped: boolean;
}

/**
 * The longest command an exec channel can run (GroupReportingCommand's line, the report's
 * wrapper included): sshd hands it to the login shell as one argument, which Linux caps at 32
 * pages (MAX_ARG_STRLEN) with its NUL. A longer one runs in the resident shell, which reads it
 * from its stdin.
 */
export const CHANNEL_COMMAND_MAX = 32 * 4096 - 1;

/** TERM to process group $1, then KILL if any of it is left after $2 seconds. */
const END_GROUP_SCRIPT = 'kill -s TERM -- "-$1" 2>/dev/null || exit 0; n=0; while kill -s 0 -- "-$1" 2>/dev/null; do [ "$n" -ge "$2" ] && { kill -s KILL -- "-$1"; exit 0; }; sleep 1; n=$((n + 1)); done';
const END_GROUP_GRACE_SEC = 3;
/** How long the kill's channel may take to open before the kill is given up. */
const END_GROUP_OPEN_MS = 10_000;

function poolKey(t: SshTarget): string {
  return JSON.stringify([t.user ?? '', t.host, t.port, t.identityFile ?? '', t.knownHosts]);
}

function briefCommand(argv: readonly string[]): string {
  const text = shellQuote(argv).replace(/\s+/g, ' '); // a script argument stays on one line
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export class SshPool {
  private readonly entries = new Map<string, { conn?: Conn; ready: Promise<Conn> }>();
  private readonly all = new Set<Conn>();
  private readonly connectOpts: ConnectOptions;
  private readonly closing = new AbortController();
  private readonly maxChannels: number;
  private connects = 0;
  private closed = false;

  constructor(opts: PoolOptions = {}) {
    this.connectOpts = {
      keepaliveIntervalMs: opts.keepaliveIntervalMs ?? SERVER_ALIVE_INTERVAL_SEC * 1000,
      keepaliveCountMax: opts.keepaliveCountMax ?? SERVER_ALIVE_COUNT_MAX,
      ...(opts.agentSocket ? { agentSocket: opts.agentSocket } : {}),
      signal: this.closing.signal,
    };
    this.maxChannels = opts.maxChannelsPerConnection ?? 8;
    // Each connect in flight listens for the pool's close: a fleet connects to dozens of hosts at
    // once, past the 10 listeners after which node warns of a leak.
    setMaxListeners(0, this.closing.signal);
  }

  /** connects: SSH handshakes completed so far; open: connections now held. */
  stats(): { connects: number; open: number } {
    return { connects: this.connects, open: this.all.size };
  }

  /**
   * Runs argv (shell-quoted for the remote shell) and buffers its output. A call without stdin,
   * or with text stdin a here-document carries, runs in the connection's resident shell when
   * that is idle (no sshd session to set up: no fork, environment or login shell on the host),
   * otherwise on a channel of its own.
   */
  async exec(target: SshTarget, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const ownChannel = new GroupReportingCommand(argv);
    const call: Call = { stopped: false };
    const { stdin } = opts;
    const textStdin = stdin === undefined || hereDocumentFits(stdin);
    const commandBytes = Buffer.byteLength(ownChannel.line);
    const onlyResident = commandBytes > CHANNEL_COMMAND_MAX;
    if (onlyResident && !textStdin) {
      throw new Error(`${describeTarget(target)}: ${briefCommand(argv)} is a command of ${commandBytes} bytes, too long for a channel (${CHANNEL_COMMAND_MAX} at most), and its stdin is not text the resident shell can take; pass the long part on stdin`);
    }
    const work = textStdin ? this.runResident(target, argv, ownChannel, call, stdin, onlyResident) : this.runExec(target, argv, ownChannel, call, stdin);
    if (opts.timeoutMs === undefined) return work;
    return this.withTimeout(work, opts.timeoutMs, () => {
      call.stopped = true;
      const late = `${describeTarget(target)}: ${briefCommand(argv)} did not finish within ${opts.timeoutMs! / 1000}s`;
      if (call.waiting) {
        // Still in line for the shell: the call it waits on and the connection are not at fault.
        call.waiting.abort(new Error('timed out waiting for the resident shell'));
        return new SshError(target.name, 'timeout', `${late}: it was still waiting for the host's resident shell, busy with an earlier call`);
      }
      call.stopCommand?.();
      const group = call.shell?.pgid;
      if (call.conn && group !== undefined && group > 1) this.endGroup(call.conn, group);
      call.shell?.close();
      if (call.conn) this.retire(call.conn);
      return new SshError(target.name, 'timeout', `${late}; stopped waiting and took its connection out of the pool`);
    });
  }

  /**
   * Runs argv on a channel of its own and yields its stdout as the caller takes it, no faster
   * (readChannel: the host waits for a slow reader); returns the exit code, -1 when `signal`
   * ended it first. `signal` aborting ends the command (stopCommand); returning early closes
   * the channel, which ends the command once it writes again.
   */
  async *read(target: SshTarget, argv: readonly string[], opts: { signal?: AbortSignal } = {}): AsyncGenerator<Buffer, number> {
    const command = new GroupReportingCommand(argv);
    const call: Call = { stopped: false };
    const { conn, open } = await this.openChannel(target, call, (client, ms) => openExecChannel(client, command.line, ms));
    open.channel.stderr.on('data', (b: Buffer) => command.take(b)); // for the group report; readChannel drops stderr
    // An abort ends the command now: a return() would wait for the next chunk of a host that is slow to send it.
    const onAbort = () => this.stopCommand(conn, open, command, 'TERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (opts.signal?.aborted) onAbort();
      return yield* readChannel(open);
    } catch (err) {
      if (opts.signal?.aborted) return -1;
      throw err instanceof ChannelLostError ? this.lostError(target, conn, argv) : err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.release(conn);
    }
  }

  /**
   * Runs `work` on an SFTP session over a pooled connection (one of its channels) and ends the
   * session after; past `timeoutMs` the call fails and the connection leaves the pool.
   */
  async sftp<T>(target: SshTarget, work: (sftp: SFTPWrapper, client: Client) => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
    const call: Call = { stopped: false };
    let session: SFTPWrapper | undefined;
    const run = (async () => {
      const { conn, open } = await this.openChannel(target, call, (client, ms) => openSftpChannel(client, ms));
      session = open;
      try {
        if (call.stopped) throw new Error('the SFTP call was given up before its session opened');
        return await work(open, conn.client);
      } finally {
        open.end();
        this.release(conn);
      }
    })();
    if (opts.timeoutMs === undefined) return run;
    return this.withTimeout(run, opts.timeoutMs, () => {
      call.stopped = true;
      session?.end();
      if (call.conn) this.retire(call.conn);
      return new SshError(target.name, 'timeout', `${describeTarget(target)}: an SFTP session did not finish within ${opts.timeoutMs! / 1000}s; stopped waiting and took its connection out of the pool`);
    });
  }

  /** Ends every connection and abandons connects in flight; later calls throw. */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    for (const conn of this.all) conn.client.destroy();
    this.all.clear();
    this.entries.clear();
  }

  private async runExec(
    target: SshTarget,
    argv: readonly string[],
    command: GroupReportingCommand,
    call: Call,
    stdin?: string | Buffer,
  ): Promise<ExecResult> {
    const { conn, open } = await this.openChannel(target, call, (client, ms) => openExecChannel(client, command.line, ms));
    call.stopCommand = () => this.stopCommand(conn, open, command, 'KILL');
    try {
      if (call.stopped) call.stopCommand();
      if (stdin !== undefined && conn.capsInFlight) capInFlight(open.channel);
      return await collectExec(open, stdin, command);
    } catch (err) {
      throw err instanceof ChannelLostError ? this.lostError(target, conn, argv) : err;
    } finally {
      this.release(conn);
    }
  }

  /**
   * Runs the call in the connection's resident shell; on a channel of its own when that is busy
   * or cannot be had, unless `onlyResident` (a command too long for a channel): then it waits
   * for the shell.
   */
  private async runResident(target: SshTarget, argv: readonly string[], ownChannel: GroupReportingCommand, call: Call, stdin: string | Buffer | undefined, onlyResident: boolean): Promise<ExecResult> {
    if (this.closed) throw new Error('SshPool is closed');
    const conn = await this.connection(target);
    const shell = conn.retired || call.stopped ? null : (conn.shell ?? (await this.openShell(conn, target)));
    if (call.stopped) throw new Error('the call was given up before it started');
    if (!shell?.alive) {
      if (onlyResident) throw new SshError(target.name, 'lost', `${describeTarget(target)}: ${briefCommand(argv)} is too long for a channel, and the host's resident shell could not be opened`);
      return this.runExec(target, argv, ownChannel, call, stdin);
    }
    if (shell.busy && !onlyResident) return this.runExec(target, argv, ownChannel, call, stdin);
    call.conn = conn;
    call.shell = shell;
    const waiting = shell.busy ? new AbortController() : undefined;
    call.waiting = waiting;
    const turn = waiting && { signal: waiting.signal, started: () => (call.waiting = undefined) };
    try {
      return await shell.run(residentCommand(argv), stdin, turn);
    } catch (err) {
      throw err instanceof ChannelLostError ? this.lostError(target, conn, argv) : err;
    } finally {
      // Retired while this call ran: with the shell idle now, the connection may be done.
      if (conn.retired) this.retire(conn);
    }
  }

  /** The connection's resident shell, opened now; null when every channel is taken or it fails to open. */
  private openShell(conn: Conn, target: SshTarget): Promise<ResidentShell | null> {
    conn.shellOpening ??= (async () => {
      if (conn.active >= this.maxChannels) return null;
      conn.active++;
      try {
        const shell = await ResidentShell.open(conn.client, target.connectTimeoutSec * 1000);
        shell.onEnd(() => {
          if (conn.shell === shell) conn.shell = undefined;
          this.release(conn);
        });
        conn.shell = shell;
        if (conn.retired) shell.close();
        return shell;
      } catch {
        this.release(conn);
        return null;
      }
    })().finally(() => (conn.shellOpening = undefined));
    return conn.shellOpening;
  }

  /**
   * Ends the command on a channel of its own: its process group (endGroup) and the channel, once
   * the command has reported its group; a report still to come does both as it comes (closing
   * the channel first could lose it).
   */
  private stopCommand(conn: Conn, open: ExecChannel, command: GroupReportingCommand, signal: 'TERM' | 'KILL'): void {
    command.whenReported((pgid) => {
      if (pgid > 1) this.endGroup(conn, pgid);
      stopChannel(open.channel, signal);
    });
  }

  /**
   * Ends a remote process group (a resident shell and the timed-out call it runs, or a command on
   * a channel of its own) over another channel: TERM, then KILL after a grace. sshd refuses to
   * signal the command of a root login (no privilege separation for root), and closing the
   * channel does not end a command that is not writing. The kill holds the connection open until
   * it has run.
   */
  private endGroup(conn: Conn, pgid: number): void {
    conn.active++;
    const command = shellQuote(['sh', '-c', END_GROUP_SCRIPT, 'sh', String(pgid), String(END_GROUP_GRACE_SEC)]);
    void openExecChannel(conn.client, command, END_GROUP_OPEN_MS)
      .then((open) => collectExec(open))
      .catch(() => {}) // best effort: a connection too far gone for this takes the shell with it
      .finally(() => this.release(conn));
  }

  private lostError(target: SshTarget, conn: Conn, argv: readonly string[]): SshError {
    this.retire(conn);
    return new SshError(target.name, 'lost', `${describeTarget(target)}: connection lost while running ${briefCommand(argv)}`);
  }

  private withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    });
    work.catch(() => {}); // a late failure after the timeout is already reported
    return Promise.race([work, limit]).finally(() => clearTimeout(timer));
  }

  /**
   * A channel (`open` makes it) on a pooled connection, within the target's connect timeout. A
   * pooled connection that turns out dead is retired and the call retried once on a fresh one.
   */
  private async openChannel<C extends ExecChannel | SFTPWrapper>(
    target: SshTarget,
    call: Call,
    open: (client: Client, timeoutMs: number) => Promise<C>,
  ): Promise<{ conn: Conn; open: C }> {
    const deadline = Date.now() + target.connectTimeoutSec * 1000;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new Error('SshPool is closed');
      const conn = await this.connection(target);
      await this.slot(conn);
      if (conn.retired) {
        this.release(conn);
        continue;
      }
      call.conn = conn;
      try {
        return { conn, open: await open(conn.client, Math.max(deadline - Date.now(), 1000)) };
      } catch (err) {
        this.release(conn);
        this.retire(conn);
        if (attempt >= 2 || Date.now() >= deadline) throw connectError(target, err as Error);
      }
    }
  }

  private connection(target: SshTarget): Promise<Conn> {
    const key = poolKey(target);
    const existing = this.entries.get(key);
    if (existing && !existing.conn?.retired) return existing.ready;
    const entry: { conn?: Conn; ready: Promise<Conn> } = { ready: this.connect(target, key) };
    entry.ready.then(
      (conn) => (entry.conn = conn),
      () => this.entries.get(key) === entry && this.entries.delete(key),
    );
    this.entries.set(key, entry);
    return entry.ready;
  }

  private async connect(target: SshTarget, key: string): Promise<Conn> {
    const client = await openConnection(target, this.connectOpts);
    this.connects++;
    const conn: Conn = { key, client, active: 0, waiters: [], retired: false, capsInFlight: capsInFlight(client) };
    if (this.closed) client.destroy();
    else this.all.add(conn);
    const gone = () => this.retire(conn, true);
    client.on('close', gone);
    client.on('end', gone);
    client.on('error', gone);
    return conn;
  }

  /** Takes the pool out of use; `now` (or no open channel but the resident shell) also ends the connection. */
  private retire(conn: Conn, now = false): void {
    if (!conn.retired) {
      conn.retired = true;
      const entry = this.entries.get(conn.key);
      if (entry?.conn === conn) this.entries.delete(conn.key);
      for (const wake of conn.waiters.splice(0)) wake();
    }
    if (now || conn.active - (conn.shell?.busy === false ? 1 : 0) === 0) {
      conn.shell?.close();
      conn.client.destroy();
      this.all.delete(conn);
    }
  }

  private async slot(conn: Conn): Promise<void> {
    while (conn.active >= this.maxChannels && !conn.retired) {
      await new Promise<void>((wake) => conn.waiters.push(wake));
    }
    conn.active++;
  }

  private release(conn: Conn): void {
    conn.active--;
    if (conn.retired) this.retire(conn); // ends it once nothing but an idle shell is left
    else conn.waiters.shift()?.();
  }
}
