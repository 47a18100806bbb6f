// A followed log on an ssh host that has run far ahead of its reader: the reader's pace reaches
// `tail -F` on the host (ssh2 leaves the channel's window shut while the reader is behind), so
// what has left the log file but not reached the reader stays a few windows, however large the
// log. Read on, the whole log comes, and the follow ends when the attempt does; an abort while
// the window is shut ends `tail` on the host at once.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshBackend } from '../../scripts/lib/backends/ssh.js';
import { TMUX_SOCKET } from '../../scripts/lib/remote/host-layout.js';
import { RemoteHost } from '../../scripts/lib/remote/remote-host.js';
import { SshPool } from '../../scripts/lib/ssh/pool.js';
import { targetFromConfig } from '../../scripts/lib/ssh/target.js';
import { tmuxKillSession, tmuxNewSession } from '../../scripts/lib/ssh/tmux.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';
import { waitFor } from '../helpers/sandbox.js';

const LINE = 'a training log line\n';
/** The log the attempt has written before the follow begins: far more than every buffer on the way. */
const BIG = 64 << 20;
const LAST = 'the end\n';
/** The most that may have left the log file without reaching the reader: ssh2's 2 MiB window twice over, sshd's buffer of as much, the pipe, with room to spare. */
const AHEAD_MAX = 16 << 20;

let hosts: TestHosts;
let tmp: string;
let pool: SshPool;
let host: RemoteHost;
let backend: SshBackend;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ssh-log-follow-'));
  hosts = await startTestHosts(1, { prefix: 'sylogf' });
  const h = hosts.hosts[0]!;
  pool = new SshPool();
  const target = targetFromConfig(h.name, { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts }, { connectTimeoutSec: 3 });
  host = new RemoteHost(target, 'switchyard', pool);
  backend = new SshBackend({
    name: 'ssh', hosts: ['h1'], openHost: async () => host, perHost: 1, lostAfterMs: 3000, gpus: 0, syncParallel: 1,
    projectRoot: tmp, store: new FileStore('file://store', path.join(tmp, 'store')), runnerBundle: path.join(tmp, 'no-runner.mjs'),
  });
}, 120_000);

afterAll(async () => {
  await pool?.close();
  await hosts?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const until = (what: string, check: () => boolean | Promise<boolean>, ms = 20_000) => waitFor(check, ms, what);

/**
 * A running attempt on h1 (its tmux session lives: a poll says running) whose stdout.log holds
 * BIG bytes of LINE, then LAST; end() ends it (its session gone: a poll says lost).
 */
async function bigRunningAttempt() {
  const id = `follow-20261203T0000-${randomBytes(4).toString('hex')}`;
  const session = `sy-${id}-1`;
  const file = `${host.layout.attemptDir(id, 1)}/stdout.log`;
  await hosts.execOn('h1', ['sh', '-c', 'cd && mkdir -p "$(dirname "$1")" && { yes "$2" | head -c "$3"; printf %s "$4"; } > "$1"', 'sh', file, LINE.trimEnd(), String(BIG), LAST]);
  await host.run(tmuxNewSession(TMUX_SOCKET, session, '.', ['sleep', '600']));
  const handle = { backend: 'ssh' as const, host: 'h1', run_id: id, attempt: 1, root: 'switchyard', session };
  expect((await backend.pollMany([{ handle, eventsFrom: 0 }]))[0]!.state).toBe('running');
  return { handle, file, end: () => host.run(tmuxKillSession(TMUX_SOCKET, session)) };
}

/** The pids of the `tail -F` following `file` (the hosts share this machine's process table). */
function tails(file: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', '-f', `tail -n [+]1 -F ${file}`]).toString().trim().split('\n').map(Number);
  } catch {
    return []; // pgrep exits 1 when none match
  }
}

/** How far `tail` has read the log: its file descriptor's offset. */
function readOffset(file: string): number {
  const [pid] = tails(file);
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    if (!readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith(`/${file}`)) continue;
    return Number(/^pos:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]);
  }
  throw new Error(`tail ${pid} has no ${file} open`);
}

/**
 * Waits, the reader taking nothing, until `tail` is more than AHEAD_MAX ahead of it (the follow
 * buffers without bound) or has stopped reading short of the log's end (held back); how far ahead.
 */
async function aheadOnceHeld(file: string, taken: number): Promise<number> {
  let last = -1;
  let offset = 0;
  await until('tail to be held back or to run away', () => {
    [last, offset] = [offset, readOffset(file)];
    return offset - taken > AHEAD_MAX || (offset === last && offset < BIG);
  });
  return offset - taken;
}

describe('SshBackend.logs followed, a reader slower than the log', () => {
  it('holds tail back on the host to the reader\'s pace, then brings the whole log and ends with the attempt', async () => {
    const { handle, file, end } = await bigRunningAttempt();
    const log = backend.logs(handle, { follow: true })[Symbol.asyncIterator]();
    const hash = createHash('sha256');
    const first = await log.next();
    let taken = Buffer.byteLength(first.value as string);
    hash.update(first.value as string);
    await until('tail -F on the host', () => tails(file).length === 1);

    expect(await aheadOnceHeld(file, taken)).toBeLessThanOrEqual(AHEAD_MAX);

    while (taken < BIG + LAST.length) {
      const next = await log.next();
      expect(next.done).toBe(false);
      taken += Buffer.byteLength(next.value as string);
      hash.update(next.value as string);
    }
    expect(taken).toBe(BIG + LAST.length);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(Buffer.alloc(BIG, LINE)).update(LAST).digest('hex'));
    await end();
    await expect(log.next()).resolves.toEqual({ done: true, value: undefined });
    await until('tail -F on the host gone', () => tails(file).length === 0, 5000);
  }, 60_000);

  it('an abort while the reader holds tail back ends the follow and tail on the host at once', async () => {
    const { handle, file, end } = await bigRunningAttempt();
    try {
      const controller = new AbortController();
      const log = backend.logs(handle, { follow: true, signal: controller.signal })[Symbol.asyncIterator]();
      const first = await log.next();
      await until('tail -F on the host', () => tails(file).length === 1);
      expect(await aheadOnceHeld(file, Buffer.byteLength(first.value as string))).toBeLessThanOrEqual(AHEAD_MAX);
      controller.abort();
      await until('tail -F on the host gone', () => tails(file).length === 0, 5000);
      await expect(log.next()).resolves.toEqual({ done: true, value: undefined });
    } finally {
      await end();
    }
  }, 60_000);
});
