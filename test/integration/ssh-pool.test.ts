// The ssh room against real sshd hosts (test/helpers/ssh-hosts.ts): the ssh2 pool, the system
// ssh argv, rsync and tmux renderers, with strict host-key checking on throughout.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { procStatFields } from '../../scripts/lib/process-alive.js';
import { run } from '../../scripts/lib/proc.js';
import { shellQuote } from '../../scripts/lib/quote.js';
import { collectExec, openExecChannel } from '../../scripts/lib/ssh/channel.js';
import { openConnection } from '../../scripts/lib/ssh/connect.js';
import { capInFlight, capsInFlight } from '../../scripts/lib/ssh/in-flight.js';
import { knownHostsName, parseKnownHosts } from '../../scripts/lib/ssh/known-hosts.js';
import { CHANNEL_COMMAND_MAX, SshPool } from '../../scripts/lib/ssh/pool.js';
import { SYNC_EXCLUDES, runRsync } from '../../scripts/lib/ssh/rsync.js';
import { SshError } from '../../scripts/lib/ssh/ssh-errors.js';
import { sshArgv, targetFromConfig, type SshTarget } from '../../scripts/lib/ssh/target.js';
import { tmuxHasSession, tmuxKillSession, tmuxNewSession } from '../../scripts/lib/ssh/tmux.js';
import { startTestHosts, type TestHost, type TestHosts } from '../helpers/ssh-hosts.js';
import { waitFor } from '../helpers/sandbox.js';

const CONNECT_TIMEOUT_SEC = 3;
let hosts: TestHosts;
let tmp: string;
const pools: SshPool[] = [];

function newPool(): SshPool {
  const pool = new SshPool({ keepaliveIntervalMs: 1000 });
  pools.push(pool);
  return pool;
}

function hostNamed(name: string): TestHost {
  return hosts.hosts.find((h) => h.name === name)!;
}

/** How messages name a test host: `ssh h1 (root@10.213.0.11:22)`. */
function where(name: string): string {
  const h = hostNamed(name);
  return `ssh ${name} (${h.user}@${h.host}:${h.port})`;
}

function target(name: string, over: Partial<SshTarget> = {}): SshTarget {
  const h = hostNamed(name);
  const entry = { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile };
  return { ...targetFromConfig(h.name, entry, { knownHosts: h.knownHosts, connectTimeoutSec: CONNECT_TIMEOUT_SEC }), ...over };
}

/** A shell snippet run on the host from its home (execOn's own working directory is not the host's home). */
function onHost(name: string, script: string): Promise<string> {
  return hosts.execOn(name, ['sh', '-c', `cd && ${script}`]);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

const until = (what: string, check: () => boolean | Promise<boolean>, ms = 5000) => waitFor(check, ms, what);

/** A `sleep` of a length no other test uses, and a pgrep pattern that does not match itself. */
function uniqueSleep(): { seconds: string; pattern: string } {
  const seconds = String(100_000 + Math.floor(Math.random() * 800_000));
  return { seconds, pattern: `sleep [${seconds[0]}]${seconds.slice(1)}` };
}

const runningOnH1 = async (pattern: string) => (await onHost('h1', `pgrep -f '${pattern}' || true`)) !== '';

/** stdin no here-document carries (a NUL): the call takes a channel of its own. */
const BINARY_STDIN = Buffer.from([0]);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ssh-pool-'));
  hosts = await startTestHosts(2);
});

afterAll(async () => {
  for (const pool of pools) await pool.close();
  await hosts?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('SshPool.exec', () => {
  it('returns exit codes, stdout and stderr, and feeds stdin', async () => {
    const pool = newPool();
    const t = target('h1');
    expect(await pool.exec(t, ['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(await pool.exec(t, ['hostname'])).toMatchObject({ code: 0, stdout: await hosts.execOn('h1', ['hostname']) });
    expect(await pool.exec(t, ['cat'], { stdin: 'hello\nworld' })).toMatchObject({ code: 0, stdout: 'hello\nworld' });
    expect(await pool.exec(t, ['cat'])).toMatchObject({ code: 0, stdout: '' }); // EOF on stdin, no hang
    expect((await pool.exec(t, ['sh', '-c', 'kill -KILL $$'])).code).toBe(137); // 128 + SIGKILL, as a shell reports it
  });

  it('passes hostile argv through the remote shell unchanged', async () => {
    const hostile = ['; touch pwned', '$(touch pwned)', '`touch pwned`', "it's", '"q"', 'a b', '*', '~', 'x\ny', '', 'FOO=bar'];
    const res = await newPool().exec(target('h1'), ['printf', '%s\\0', ...hostile]);
    expect(res.stdout.split('\0').slice(0, -1)).toEqual(hostile);
    expect(await onHost('h1', 'ls pwned 2>/dev/null || echo absent')).toBe('absent\n');
  });

  it('on a channel of its own, gives what a plain channel gives, byte for byte', async () => {
    // The pool has such a call report its process group on stderr first; none of that may show.
    const t = target('h1');
    const client = await openConnection(t, { keepaliveIntervalMs: 1000, keepaliveCountMax: 3 });
    try {
      const plain = async (argv: string[], stdin: Buffer) => collectExec(await openExecChannel(client, shellQuote(argv), 10_000), stdin);
      const binary = Buffer.concat([BINARY_STDIN, randomBytes(100_000)]);
      const calls: [string[], Buffer][] = [
        [['cat'], binary],
        [['sh', '-c', 'cat >&2; exit 3'], binary],
        [['sh', '-c', 'printf "%s 123\\n" 0123456789abcdef >&2; printf out; exit 42'], BINARY_STDIN], // a line shaped like a report
        [['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" e >&2'], BINARY_STDIN], // stderr in many packets
        [['true'], BINARY_STDIN],
      ];
      const pool = newPool();
      for (const [argv, stdin] of calls) expect(await pool.exec(t, argv, { stdin }), argv.join(' ')).toEqual(await plain(argv, stdin));
      expect(await pool.exec(t, ['true'], { stdin: BINARY_STDIN })).toEqual({ code: 0, stdout: '', stderr: '' });
      expect((await pool.exec(t, ['sh', '-c', 'cat >&2'], { stdin: binary })).stderr).toBe(binary.toString('utf8'));
    } finally {
      client.destroy();
    }
  });

  it('runs many calls, serial and parallel, over one connection', async () => {
    const pool = newPool();
    const t = target('h1');
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await pool.exec(t, ['sh', '-c', 'echo $SSH_CONNECTION'])).stdout);
    const parallel = await Promise.all(Array.from({ length: 30 }, () => pool.exec(t, ['sh', '-c', 'echo $SSH_CONNECTION'])));
    for (const r of parallel) seen.add(r.stdout);
    // one client port = one TCP connection, and the pool performed one handshake
    expect(seen.size).toBe(1);
    expect(pool.stats()).toEqual({ connects: 1, open: 1 });
  });

  it('connects to a dozen hosts at once without a listener-leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      // A known_hosts file of its own makes each target a connection of its own.
      const targets = Array.from({ length: 12 }, (_, i) => {
        const knownHosts = path.join(tmp, `known_hosts.${i}`);
        writeFileSync(knownHosts, readFileSync(hostNamed('h1').knownHosts));
        return target('h1', { knownHosts });
      });
      const pool = newPool();
      await Promise.all(targets.map((t) => pool.exec(t, ['true'])));
      expect(pool.stats().connects).toBe(12);
      await new Promise((r) => setImmediate(r)); // node emits warnings on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('gives up on a call past its timeout, and the next call gets a fresh connection', async () => {
    const pool = newPool();
    const t = target('h1');
    await pool.exec(t, ['true']);
    const started = Date.now();
    const err = await failure(pool.exec(t, ['sleep', '10'], { timeoutMs: 1500 }));
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toMatch(/^ssh h1 \(.*\): sleep 10 did not finish within 1\.5s/);
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(2500);
    expect((await pool.exec(t, ['echo', 'ok'])).stdout).toBe('ok\n');
    expect(pool.stats().connects).toBe(2);
  });

  describe('a timed-out command ends on the host, though sshd will not signal a root login', () => {
    it('with TERM', async () => {
      const pool = newPool();
      const t = target('h1');
      await pool.exec(t, ['true']); // the resident shell is open and idle
      const { seconds, pattern } = uniqueSleep();
      const err = await failure(pool.exec(t, ['sh', '-c', `sleep ${seconds}; echo woke`], { timeoutMs: 500 }));
      expect(err.message).toMatch(/did not finish within 0\.5s/);
      await until('the timed-out sleep to end', async () => !(await runningOnH1(pattern)), 8000);
    });

    it('with KILL after a grace, when it ignores TERM', async () => {
      const pool = newPool();
      const t = target('h1');
      await pool.exec(t, ['true']);
      const { seconds, pattern } = uniqueSleep();
      await failure(pool.exec(t, ['sh', '-c', `trap '' TERM; sleep ${seconds}`], { timeoutMs: 500 }));
      await until('the sleep that ignores TERM to be killed', async () => !(await runningOnH1(pattern)), 10_000);
    });

    it('on a channel of its own, with TERM', async () => {
      const pool = newPool();
      const t = target('h1');
      const { seconds, pattern } = uniqueSleep();
      const err = await failure(pool.exec(t, ['sh', '-c', `sleep ${seconds}; echo woke`], { stdin: BINARY_STDIN, timeoutMs: 500 }));
      expect(err.message).toMatch(/did not finish within 0\.5s/);
      await until('the timed-out sleep to end', async () => !(await runningOnH1(pattern)), 8000);
    });

    it('on a channel of its own, with KILL after a grace, when it ignores TERM', async () => {
      const pool = newPool();
      const t = target('h1');
      const { seconds, pattern } = uniqueSleep();
      await failure(pool.exec(t, ['sh', '-c', `trap '' TERM; sleep ${seconds}`], { stdin: BINARY_STDIN, timeoutMs: 500 }));
      await until('the sleep that ignores TERM to be killed', async () => !(await runningOnH1(pattern)), 10_000);
    });

    it('on a channel of its own that opens after the call was given up', async () => {
      const pool = newPool();
      const t = target('h1');
      await pool.exec(t, ['true']); // connected: the 1 ms limit passes while the channel opens
      const { seconds, pattern } = uniqueSleep();
      const marker = `started-${seconds}`;
      await failure(pool.exec(t, ['sh', '-c', `: > ${marker}; sleep ${seconds}`], { stdin: BINARY_STDIN, timeoutMs: 1 }));
      // The channel's open was asked before the give-up, so the command starts: on a loaded host, in seconds.
      await until('the command to start', async () => (await onHost('h1', `ls ${marker} 2>/dev/null || true`)) !== '', 30_000);
      await until('the sleep to end', async () => !(await runningOnH1(pattern)), 30_000);
    });
  });
});

describe('what a channel keeps in flight', () => {
  /** Page faults so far of a process (here: the sshd that serves one connection): minflt, proc(5)'s field 10. */
  const faultsOf = (pid: string) => Number(procStatFields(pid)![7]);
  // Hashes stdin, then names its parent: the sshd process serving this connection.
  const HASH_AND_SSHD = ['sh', '-c', 'sha256sum; echo $PPID'];

  it('to a near OpenSSH host, four of its packets: a large stdin arrives whole, and sshd never buffers its whole window', async () => {
    const data = randomBytes(16 << 20);
    const digest = createHash('sha256').update(data).digest('hex');
    const t = target('h2');

    // The server's whole window, as a plain ssh2 channel sends: the control.
    const client = await openConnection(t, { keepaliveIntervalMs: 1000, keepaliveCountMax: 3 });
    let whole: number;
    try {
      expect(capsInFlight(client)).toBe(true); // ssh2 still tells the server's software and address
      const res = await collectExec(await openExecChannel(client, shellQuote(HASH_AND_SSHD), 10_000), data);
      const [hash, , sshd] = res.stdout.split(/\s+/); // "<sha256>  -\n<pid>\n"
      expect(hash).toBe(digest);
      whole = faultsOf(sshd!);
    } finally {
      client.destroy();
    }

    const res = await newPool().exec(t, HASH_AND_SSHD, { stdin: data });
    const [hash, , sshd] = res.stdout.split(/\s+/);
    expect(hash).toBe(digest);
    // sshd's buffer grows 32 KiB a step, each a fresh copy: ~50,000 faults for the whole window, far fewer for 128 KiB.
    expect(faultsOf(sshd!)).toBeLessThan(whole / 4);
  });

  it("keeps exactly four of OpenSSH's 32 KiB session packets in flight, and sshd still asks for more each time", async () => {
    const data = randomBytes(8 << 20);
    const client = await openConnection(target('h2'), { keepaliveIntervalMs: 1000, keepaliveCountMax: 3 });
    try {
      const open = await openExecChannel(client, 'sha256sum', 10_000);
      capInFlight(open.channel);
      expect((open.channel.outgoing as { window: number }).window).toBe(4 * 32 * 1024);
      const res = await collectExec(open, data);
      expect(res.stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      client.destroy();
    }
  });
});

describe('the resident shell', () => {
  /** The pid of the shell that ran the call's subshell: the resident shell, when one did. */
  const shellPid = ['sh', '-c', "awk '{print $4}' /proc/$PPID/stat"];

  it('runs stdin-less calls one after another in one shell, each in a clean subshell', async () => {
    const pool = newPool();
    const t = target('h1');
    const first = (await pool.exec(t, shellPid)).stdout;
    for (let i = 0; i < 3; i++) expect((await pool.exec(t, shellPid)).stdout).toBe(first);
    await pool.exec(t, ['sh', '-c', 'cd /tmp && export LEAK=1']);
    expect((await pool.exec(t, ['sh', '-c', 'pwd; echo ${LEAK-unset}'])).stdout).toBe(`${await onHost('h1', 'pwd')}unset\n`);
  });

  it('keeps output exact: no trailing newline added or lost, stderr apart, any exit code', async () => {
    const pool = newPool();
    const t = target('h1');
    expect(await pool.exec(t, ['sh', '-c', 'printf out; printf err >&2; exit 42'])).toEqual({ code: 42, stdout: 'out', stderr: 'err' });
    expect(await pool.exec(t, ['printf', '\\n\\n'])).toEqual({ code: 0, stdout: '\n\n', stderr: '' });
    const big = (await pool.exec(t, ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" x'])).stdout;
    expect(big.length).toBe(3_000_000);
    expect(await pool.exec(t, ['sh', '-c', 'read -r line; echo "got[$line]"'])).toMatchObject({ stdout: 'got[]\n' }); // stdin is empty
  });

  it('runs a `sh -c` script in its subshell with the outcome a shell of its own gives it', async () => {
    const pool = newPool();
    const t = target('h1');
    const hostile = ['a b', "'", '$(touch pwned)', '', '-n', 'x\ny', '*'];
    const scripts = [
      ['printf \'[%s]\' "$@"; echo "$# $0"', ...hostile],
      ['exit 7'],
      ['set -e; false; echo not reached'],
      ['f() { return 3; }; f; echo "status $?"; cd /tmp && pwd'],
      ['printf out; printf err >&2; trap \'echo trapped\' EXIT'],
    ];
    for (const [script, ...args] of scripts) {
      const argv = ['sh', '-c', script!, 'sh', ...args];
      // stdin no here-document carries (no final newline): a channel of its own, where sh -c runs as itself
      expect(await pool.exec(t, argv), script).toEqual(await pool.exec(t, argv, { stdin: 'x' }));
    }
    // A syntax error ends the call's subshell, not the resident shell.
    expect((await pool.exec(t, ['sh', '-c', 'if then fi', 'sh'])).code).toBe(2);
    const first = (await pool.exec(t, shellPid)).stdout;
    expect((await pool.exec(t, ['sh', '-c', 'echo "$1"', 'sh', 'still here'])).stdout).toBe('still here\n');
    expect((await pool.exec(t, shellPid)).stdout).toBe(first);
    expect(await onHost('h1', 'ls pwned 2>/dev/null || true')).toBe('');
  });

  it('takes text stdin as a here-document, byte for byte, and other stdin on a channel of its own', async () => {
    const pool = newPool();
    const t = target('h1');
    const resident = (await pool.exec(t, shellPid)).stdout;
    /** Which shell ran the call (on stderr) and the digest of the stdin it read (on stdout). */
    const readBy = ['sh', '-c', "awk '{print $4}' /proc/$PPID/stat >&2; sha256sum"];
    const sha = (b: string | Buffer) => `${createHash('sha256').update(b).digest('hex')}  -\n`;
    const text = [
      'EOF\n',
      "'\n$(touch pwned) `touch pwned` $HOME\n",
      'ends in a backslash \\\n',
      '   \n\n',
      'crlf\r\n',
      `${'x'.repeat(9000)}\n`, // past a pipe's atomic write, where dash forks a writer for the here-document
      Buffer.from([0xff, 0xfe, 0x80, 0x0a]), // not UTF-8
      '',
      'y\n'.repeat(100_000), // 200 kB
    ];
    for (const stdin of text) {
      expect(await pool.exec(t, readBy, { stdin }), JSON.stringify(stdin.slice(0, 40))).toEqual({ code: 0, stdout: sha(stdin), stderr: resident });
    }
    // A command that leaves its stdin unread costs the shell nothing.
    expect((await pool.exec(t, ['true'], { stdin: 'z\n'.repeat(100_000) })).code).toBe(0);
    for (const stdin of ['no final newline', 'a NUL\0\n', Buffer.alloc(300 * 1024, 0x0a)]) {
      const r = await pool.exec(t, readBy, { stdin });
      expect(r.stdout).toBe(sha(stdin));
      expect(r.stderr).not.toBe(resident);
    }
    expect((await pool.exec(t, shellPid)).stdout).toBe(resident);
    expect(await onHost('h1', 'ls pwned 2>/dev/null || true')).toBe('');
  });

  describe('a command too long for a channel', () => {
    // Past CHANNEL_COMMAND_MAX: one argument of 200 kB and 2,000 of 100 bytes, as a SLURM
    // submit of thousands of units can give. Only the resident shell can run it.
    const long = ['x'.repeat(200_000), ...Array.from({ length: 2000 }, (_, i) => `${i}`.padEnd(100, '.'))];
    const digest = createHash('sha256').update(long.join('\n') + '\n').digest('hex');
    const countAndDigest = ['sh', '-c', 'echo "$#"; printf "%s\\n" "$@" | sha256sum', 'sh', ...long];
    const fifo = 'resident-hold';

    /** Occupies the pool's resident shell on h1 until release(): a call that reads a FIFO. */
    async function holdShell(pool: SshPool) {
      const t = target('h1');
      await onHost('h1', `rm -f ${fifo} ${fifo}.in && mkfifo ${fifo}`);
      const resident = (await pool.exec(t, shellPid)).stdout; // the shell is open and idle
      const held = pool.exec(t, ['sh', '-c', ': > "$1.in"; read -r line < "$1"; echo "held $line"', 'sh', fifo]);
      await until('the held call to start', async () => (await onHost('h1', `ls ${fifo}.in 2>/dev/null || true`)) !== '');
      // The shell is busy now: a short call goes on a channel of its own.
      expect((await pool.exec(t, shellPid)).stdout).not.toBe(resident);
      return { t, resident, held, release: () => onHost('h1', `echo go > ${fifo}`) };
    }

    it('runs in the resident shell, waiting its turn while the shell is busy', async () => {
      expect(Buffer.byteLength(shellQuote(countAndDigest))).toBeGreaterThan(CHANNEL_COMMAND_MAX);
      const pool = newPool();
      const { t, resident, held, release } = await holdShell(pool);
      const waiting = pool.exec(t, countAndDigest);
      await release();
      expect(await held).toMatchObject({ code: 0, stdout: 'held go\n' });
      expect(await waiting).toEqual({ code: 0, stdout: `${long.length}\n${digest}  -\n`, stderr: '' });
      expect((await pool.exec(t, shellPid)).stdout).toBe(resident);
      // With the shell idle it runs at once; with text stdin too.
      expect((await pool.exec(t, countAndDigest)).stdout).toBe(`${long.length}\n${digest}  -\n`);
      expect((await pool.exec(t, [...countAndDigest.slice(0, 2), 'cat; echo "$#"', 'sh', ...long], { stdin: 'in\n' })).stdout).toBe(`in\n${long.length}\n`);
      expect(pool.stats().connects).toBe(1);
    });

    it('past its timeout while waiting, leaves the line; the call ahead of it and the connection carry on', async () => {
      const pool = newPool();
      const { t, resident, held, release } = await holdShell(pool);
      const err = await failure(pool.exec(t, countAndDigest, { timeoutMs: 300 }));
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toMatch(/^ssh h1 \(.*\): sh -c .* did not finish within 0\.3s: it was still waiting for the host's resident shell, busy with an earlier call$/);
      await release();
      expect(await held).toMatchObject({ code: 0, stdout: 'held go\n' });
      expect((await pool.exec(t, shellPid)).stdout).toBe(resident);
      expect(pool.stats()).toEqual({ connects: 1, open: 1 });
    });

    it('a connection retired while its shell is busy closes once its calls have ended, in either order', async () => {
      for (const shellFirst of [true, false]) {
        const pool = newPool();
        const { t, held, release } = await holdShell(pool);
        // A call on a channel of its own (the shell is busy) times out: its connection leaves the
        // pool, and the pool ends the command's group, but this command ignores TERM and goes on
        // until the test lets it end (or KILL comes, a grace later).
        await onHost('h1', 'rm -f channel-go');
        await failure(pool.exec(t, ['sh', '-c', "trap '' TERM; until [ -e channel-go ]; do sleep 0.1; done"], { timeoutMs: 300 }));
        const releaseChannel = () => onHost('h1', 'touch channel-go');
        await (shellFirst ? release() : releaseChannel());
        if (shellFirst) expect((await held).stdout).toBe('held go\n');
        expect(pool.stats()).toEqual({ connects: 1, open: 1 }); // the other call still runs
        await (shellFirst ? releaseChannel() : release());
        await until('the retired connection to close', () => pool.stats().open === 0);
        expect((await held).code).toBe(0);
        expect((await pool.exec(t, ['echo', 'ok'])).stdout).toBe('ok\n');
        expect(pool.stats()).toEqual({ connects: 2, open: 1 });
      }
    });

    it('with stdin the shell cannot take, fails at once saying so', async () => {
      const err = await failure(newPool().exec(target('h1'), countAndDigest, { stdin: Buffer.from([0, 1, 2]) }));
      expect(err.message).toMatch(/^ssh h1 \(.*\): sh -c .* is a command of \d+ bytes, too long for a channel \(131071 at most\), and its stdin is not text the resident shell can take; pass the long part on stdin$/);
    });
  });

  it('fails a call whose shell dies under it, and the next call gets a working one', async () => {
    const pool = newPool();
    const t = target('h1');
    await pool.exec(t, ['true']);
    const err = await failure(pool.exec(t, ['sh', '-c', 'kill -KILL $(awk \'{print $4}\' /proc/$PPID/stat); sleep 5']));
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toMatch(/^ssh h1 \(.*\): connection lost while running sh -c/);
    expect((await pool.exec(t, ['echo', 'ok'])).stdout).toBe('ok\n');
  });
});

describe('host keys', () => {
  function keyOf(name: string): { type: string; key: string } {
    const h = hostNamed(name);
    const entry = parseKnownHosts(readFileSync(h.knownHosts, 'utf8')).find((e) => e.hosts === knownHostsName(h.host, h.port))!;
    return { type: entry.keyType, key: entry.keyBase64 };
  }

  it('refuses a changed host key with HOST KEY CHANGED, over ssh2 and the system ssh', async () => {
    const h1 = hostNamed('h1');
    const wrong = keyOf('h2');
    const file = path.join(tmp, 'known_hosts.changed');
    writeFileSync(file, `${knownHostsName(h1.host, h1.port)} ${wrong.type} ${wrong.key}\n`);
    const t = target('h1', { knownHosts: file });
    const err = await failure(newPool().exec(t, ['true']));
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toContain(`${where('h1')}: HOST KEY CHANGED (possible man-in-the-middle)`);
    expect(err.message).toContain(`ssh-keygen -R ${h1.port === 22 ? h1.host : `'[${h1.host}]:${h1.port}'`} -f ${file}`);
    expect(err.message).not.toContain('\n');
    const sys = await run(sshArgv(t, ['true']), { allowFail: true });
    expect(sys.code).toBe(255);
    expect(sys.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('refuses an unknown host and says how to add it', async () => {
    const file = path.join(tmp, 'known_hosts.empty');
    writeFileSync(file, '# nothing here\n');
    const err = await failure(newPool().exec(target('h2', { knownHosts: file }), ['true']));
    expect(err.message).toContain(`${where('h2')}: host key is not in ${file}`);
    expect(err.message).toContain(`ssh-keyscan -p ${hostNamed('h2').port} ${hostNamed('h2').host} >> ${file}`);
    expect(existsSync(file) && readFileSync(file, 'utf8')).toBe('# nothing here\n'); // never added silently
  });

  it('accepts a hashed known_hosts entry', async () => {
    const file = path.join(tmp, 'known_hosts.hashed');
    writeFileSync(file, readFileSync(hostNamed('h1').knownHosts));
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'pipe' });
    expect((await newPool().exec(target('h1', { knownHosts: file }), ['echo', 'hi'])).stdout).toBe('hi\n');
  });

  it('reports an unauthorized key as an authentication failure', async () => {
    const key = path.join(tmp, 'stranger');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const err = await failure(newPool().exec(target('h1', { identityFile: key }), ['true']));
    expect(err.message).toContain(`${where('h1')}: authentication failed with the key ${key}`);
  });
});

describe('the system ssh argv', () => {
  it('runs exactly the argv on the host', async () => {
    const res = await run(sshArgv(target('h2'), ['printf', '%s|', 'a b', '$HOME', "it's"]));
    expect(res.stdout.toString()).toBe("a b|$HOME|it's|");
  });
});

describe('a host that goes away', () => {
  it('fails the next call within the connect timeout, naming the host, then reconnects', async () => {
    const pool = newPool();
    const t = target('h2');
    expect((await pool.exec(t, ['echo', 'up'])).stdout).toBe('up\n');
    const follower = pool.read(t, ['sh', '-c', 'echo started; exec sleep 30']);
    expect(String((await follower.next()).value)).toBe('started\n');
    const followerEnd = follower.next().then((r) => `exit ${r.value}`, (err: Error) => err.message);
    await hosts.stopSshd('h2');
    try {
      const started = Date.now();
      const err = await failure(pool.exec(t, ['echo', 'down']));
      expect(Date.now() - started).toBeLessThan(CONNECT_TIMEOUT_SEC * 1000 + 500);
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toMatch(/: (connection refused|connection lost)/);
      expect(err.message.startsWith(`${where('h2')}: `)).toBe(true);
      expect(await followerEnd).toMatch(/^ssh h2 .*: connection lost while running sh -c 'echo started; exec sleep 30'$/);
    } finally {
      await hosts.startSshd('h2');
    }
    expect((await pool.exec(t, ['echo', 'back'])).stdout).toBe('back\n');
    expect(pool.stats().connects).toBe(2);
  });
});

describe('a host that accepts TCP but never speaks', () => {
  it('fails within the connect timeout, or sooner at the call timeout', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const silent = (connectTimeoutSec: number): SshTarget => ({
      name: 'mute', host: '127.0.0.1', port, user: 'nobody', identityFile: hostNamed('h1').identityFile, knownHosts: hostNamed('h1').knownHosts, connectTimeoutSec,
    });
    try {
      const pool = newPool();
      let started = Date.now();
      const err = await failure(pool.exec(silent(1), ['true']));
      expect(Date.now() - started).toBeLessThan(1800);
      expect(err.message).toBe(`ssh mute (nobody@127.0.0.1:${port}): no answer within the 1s connect timeout (host down or unreachable?)`);
      started = Date.now();
      const late = await failure(pool.exec(silent(30), ['true'], { timeoutMs: 700 }));
      expect(Date.now() - started).toBeLessThan(1200);
      expect(late.message).toMatch(/^ssh mute .*: true did not finish within 0\.7s/);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe('rsync', () => {
  it('pushes and pulls a tree, honours excludes, and a second push transfers nothing', async () => {
    const src = path.join(tmp, 'tree');
    for (const d of ['sub', 'node_modules/pkg', '__pycache__']) mkdirSync(path.join(src, d), { recursive: true });
    writeFileSync(path.join(src, 'a.txt'), 'a'.repeat(100_000));
    writeFileSync(path.join(src, 'sub/b.txt'), 'b');
    writeFileSync(path.join(src, 'node_modules/pkg/index.js'), 'x');
    writeFileSync(path.join(src, '__pycache__/m.cpython-311.pyc'), 'x');
    writeFileSync(path.join(src, '.env'), 'SECRET=1');
    const t = target('h1');
    const progress: number[] = [];
    const first = await runRsync({ src: `${src}/`, dest: 'proj/', target: t, direction: 'push', excludes: SYNC_EXCLUDES, delete: true, onProgress: (_b, pct) => progress.push(pct) });
    expect(first).toMatchObject({ filesTransferred: 2, bytesTransferred: 100_001 });
    expect(progress.at(-1)).toBe(100);
    const remote = await onHost('h1', 'cd proj && find . -type f | sort');
    expect(remote).toBe('./a.txt\n./sub/b.txt\n');
    const again = await runRsync({ src: `${src}/`, dest: 'proj/', target: t, direction: 'push', excludes: SYNC_EXCLUDES, delete: true });
    expect(again).toEqual({ filesTransferred: 0, bytesTransferred: 0, deleted: 0 });

    await onHost('h1', 'echo made-there > proj/sub/remote.txt');
    const back = path.join(tmp, 'back');
    const pulled = await runRsync({ src: 'proj/', dest: back, target: t, direction: 'pull', excludes: SYNC_EXCLUDES });
    expect(pulled.filesTransferred).toBe(3);
    expect(readFileSync(path.join(back, 'sub/remote.txt'), 'utf8')).toBe('made-there\n');
    expect(readFileSync(path.join(back, 'a.txt'), 'utf8')).toHaveLength(100_000);
  });

  it('turns an ssh failure into one line naming the host', async () => {
    const file = path.join(tmp, 'known_hosts.none');
    writeFileSync(file, '');
    const err = await failure(runRsync({ src: `${tmp}/`, dest: 'x/', target: target('h1', { knownHosts: file }), direction: 'push', excludes: [] }));
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toContain(`${where('h1')}: host key is not in ${file}`);
  });
});

describe('SshPool.read, following', () => {
  /** The text `reader` sends, gathered in the background; `done` settles with its exit code. */
  function gather(reader: AsyncGenerator<Buffer, number>): { text: () => string; done: Promise<number> } {
    let text = '';
    const done = (async () => {
      for (;;) {
        const r = await reader.next();
        if (r.done) return r.value;
        text += r.value.toString('utf8');
      }
    })();
    return { text: () => text, done };
  }

  it('follows a growing file and an abort stops it', async () => {
    const pool = newPool();
    const t = target('h1');
    const log = `follow-${process.pid}.log`;
    await pool.exec(t, ['sh', '-c', `echo one > ${log}`]);
    const stop = new AbortController();
    const follow = gather(pool.read(t, ['tail', '-n', '+1', '-f', log], { signal: stop.signal }));
    await until('the first line', () => follow.text() === 'one\n');
    await pool.exec(t, ['sh', '-c', `echo two >> ${log}; echo three >> ${log}`]);
    await until('the appended lines', () => follow.text() === 'one\ntwo\nthree\n');
    stop.abort();
    expect(typeof (await follow.done)).toBe('number'); // -1, or the status of the stopped tail
    await pool.exec(t, ['sh', '-c', `echo four >> ${log}`]);
    expect(follow.text()).toBe('one\ntwo\nthree\n');
    await until('tail to exit', async () => (await onHost('h1', `pgrep -f 'tail -n [+]1 -f ${log}' || true`)) === '');
  });

  it('an abort ends a quiet `tail -F` (the log follower) though sshd refuses to signal it', async () => {
    // OpenSSH signals a session's command only under privilege separation, which it skips for
    // root, as this testbed logs in (and a rented GPU box most often does). tail sees its output
    // pipe closed with the channel, without a line more to write.
    const pool = newPool();
    const t = target('h1');
    const log = `quiet-${process.pid}.log`;
    await pool.exec(t, ['sh', '-c', `echo last > ${log}`]);
    const stop = new AbortController();
    const follow = gather(pool.read(t, ['tail', '-n', '+1', '-F', log], { signal: stop.signal }));
    await until('the line', () => follow.text() === 'last\n');
    stop.abort();
    await follow.done;
    await until('tail to exit', async () => (await onHost('h1', `pgrep -f 'tail -n [+]1 -F ${log}' || true`)) === '');
  });

  it('an abort ends a command that writes nothing, though sshd refuses to signal it', async () => {
    const pool = newPool();
    const { seconds, pattern } = uniqueSleep();
    const stop = new AbortController();
    const follow = gather(pool.read(target('h1'), ['sh', '-c', `echo started; sleep ${seconds}`], { signal: stop.signal }));
    await until('the first line', () => follow.text() === 'started\n');
    stop.abort();
    await until('the quiet sleep to end', async () => !(await runningOnH1(pattern)), 8000);
    expect(typeof (await follow.done)).toBe('number');
  });

  it('a followed command that ends by itself ends the read with its exit status', async () => {
    const pool = newPool();
    const follow = gather(pool.read(target('h1'), ['sh', '-c', 'echo "$1"; exit 3', 'sh', 'a b']));
    expect(await follow.done).toBe(3);
    expect(follow.text()).toBe('a b\n');
  });
});

describe('tmux renderers on a real host', () => {
  it('start, find and kill a detached session', async () => {
    const pool = newPool();
    const t = target('h2');
    await pool.exec(t, ['mkdir', '-p', 'work']);
    const start = tmuxNewSession('switchyard', 'shard-0', 'work', ['sh', '-c', 'echo "$GREETING" > greeting.txt; sleep 30'], { GREETING: "hi 'there' $HOME" });
    expect((await pool.exec(t, start)).code).toBe(0);
    await until('the session to write its file', async () => (await pool.exec(t, ['cat', 'work/greeting.txt'])).stdout === "hi 'there' $HOME\n");
    expect((await pool.exec(t, tmuxHasSession('switchyard', 'shard-0'))).code).toBe(0);
    expect((await pool.exec(t, tmuxHasSession('switchyard', 'shard'))).code).toBe(1); // exact names, not prefixes
    expect((await pool.exec(t, tmuxKillSession('switchyard', 'shard-0'))).code).toBe(0);
    expect((await pool.exec(t, tmuxHasSession('switchyard', 'shard-0'))).code).toBe(1);
    const missing = tmuxNewSession('switchyard', 'shard-1', 'no-such-dir', ['sleep', '30']);
    await pool.exec(t, missing);
    await until('the session with a missing cwd to end', async () => (await pool.exec(t, tmuxHasSession('switchyard', 'shard-1'))).code === 1);
  });
});
