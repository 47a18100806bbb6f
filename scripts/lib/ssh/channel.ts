// One ssh2 exec channel: open it within a deadline, collect its output or read it as the caller
// takes it, read its exit.
import { constants } from 'node:os';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';

export interface ExecResult {
  /** the remote exit status; 128 + signal number when a signal ended it (as a shell reports) */
  code: number;
  stdout: string;
  stderr: string;
  /** e.g. 'SIGKILL' when a signal ended the command */
  signal?: string;
}

/** Why a channel ended without an exit status (the connection went away under it). */
export class ChannelLostError extends Error {}

interface Exit {
  code?: number | null;
  signal?: string;
}

/** An open exec channel and its exit, recorded from the moment it opened. */
export interface ExecChannel {
  channel: ClientChannel;
  exit: Exit;
}

/**
 * Opens an exec channel or rejects after `timeoutMs` (a channel open can hang on a dead link).
 * The exit listener goes on inside ssh2's callback: a fast command's exit status can arrive in the
 * same read as the open confirmation, before any promise continuation runs.
 */
export function openExecChannel(client: Client, command: string, timeoutMs: number): Promise<ExecChannel> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(Object.assign(new Error('no answer to the channel open'), { level: 'client-timeout' })),
      timeoutMs,
    );
    try {
      client.exec(command, (err, channel) => {
        clearTimeout(timer);
        if (err) return reject(err);
        const exit: Exit = {};
        channel.on('exit', (code: number | null, signal?: string) => {
          exit.code = code;
          if (signal) exit.signal = signal;
        });
        channel.on('error', () => {}); // surfaces as a close without exit status
        resolve({ channel, exit });
      });
    } catch (err) {
      clearTimeout(timer);
      reject(err);
    }
  });
}

/** Opens an SFTP session (the `sftp` subsystem) or rejects after `timeoutMs`. */
export function openSftpChannel(client: Client, timeoutMs: number): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(Object.assign(new Error('no answer to the SFTP session open'), { level: 'client-timeout' })),
      timeoutMs,
    );
    try {
      client.sftp((err, sftp) => {
        clearTimeout(timer);
        if (err) return reject(err);
        sftp.on('error', () => {}); // surfaces as a failed request
        resolve(sftp);
      });
    } catch (err) {
      clearTimeout(timer);
      reject(err);
    }
  });
}

function exitCode(exit: Exit): number {
  if (typeof exit.code === 'number') return exit.code;
  const signo = exit.signal ? constants.signals[exit.signal as NodeJS.Signals] : undefined;
  return signo ? 128 + signo : -1;
}

/** Calls `onClose` with the exit once the channel closes; `lost` when no exit status came. */
function watchExit({ channel, exit }: ExecChannel, onClose: (exit: Exit, lost: boolean) => void): void {
  channel.on('close', () => onClose(exit, exit.code === undefined && exit.signal === undefined));
}

/** What is kept of a stream as it comes: `take` gives the bytes of a chunk to keep, `end` what it still held back when the stream ended. */
export interface StreamFilter {
  take(chunk: Buffer): Buffer;
  end(): Buffer;
}

/** Sends stdin (then EOF) and buffers stdout/stderr (through `stderrFilter`, if given) until the command exits. */
export function collectExec(open: ExecChannel, stdin?: string | Buffer, stderrFilter?: StreamFilter): Promise<ExecResult> {
  const { channel } = open;
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    channel.on('data', (b: Buffer) => out.push(b));
    channel.stderr.on('data', (b: Buffer) => err.push(stderrFilter ? stderrFilter.take(b) : b));
    watchExit(open, (exit, lost) => {
      if (lost) return reject(new ChannelLostError('the channel closed without an exit status'));
      if (stderrFilter) err.push(stderrFilter.end());
      resolve({
        code: exitCode(exit),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ...(exit.signal ? { signal: exit.signal } : {}),
      });
    });
    if (stdin !== undefined) channel.end(stdin);
    else channel.end();
  });
}

/**
 * Yields stdout as the caller takes it and returns the exit code. Backpressure reaches the host:
 * ssh2 stops opening the channel's window while its buffer is full, so sshd, and the command
 * writing, wait for a slow reader; memory stays at a window or two whatever the output's size.
 * stderr is dropped as it comes (left unread, it would shut the shared window). A caller that
 * stops early (return, throw) closes the channel, which ends a command still writing (EPIPE).
 */
export async function* readChannel(open: ExecChannel): AsyncGenerator<Buffer, number> {
  const { channel } = open;
  const closed = new Promise<{ exit: Exit; lost: boolean }>((resolve) => watchExit(open, (exit, lost) => resolve({ exit, lost })));
  channel.stderr.resume();
  channel.end();
  let ended = false;
  try {
    for await (const chunk of channel as AsyncIterable<Buffer>) yield chunk;
    ended = true;
  } finally {
    if (!ended) stopChannel(channel, 'TERM');
  }
  const { exit, lost } = await closed;
  if (lost) throw new ChannelLostError('the channel closed without an exit status');
  return exitCode(exit);
}

interface ChannelInternals {
  outgoing?: { id: number; state: string };
  _client?: { _protocol?: { signal(id: number, name: string): void } };
}

/**
 * Asks sshd to signal the remote command (it killpg()s the session). ssh2's channel.signal()
 * is silently skipped once stdin is closed, and every exec here closes stdin, so this sends the
 * same request itself while the channel is still open for it.
 */
function sendSignal(channel: ClientChannel, signal: 'TERM' | 'KILL'): void {
  const { outgoing, _client } = channel as unknown as ChannelInternals;
  const protocol = _client?._protocol;
  if (outgoing && protocol && (outgoing.state === 'open' || outgoing.state === 'eof')) {
    protocol.signal(outgoing.id, signal);
  } else {
    channel.signal(signal);
  }
}

/** Best-effort stop: signal the remote command, then close the channel. */
export function stopChannel(channel: ClientChannel, signal: 'TERM' | 'KILL'): void {
  try {
    sendSignal(channel, signal);
  } catch {
    // the connection is already going away
  }
  channel.close();
}
