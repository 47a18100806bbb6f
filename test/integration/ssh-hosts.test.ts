// The SSH test hosts themselves (test/helpers/ssh-hosts.ts): real sshd in network namespaces,
// strict host keys, per-host hostname/HOME//tmp, tmux and rsync, an ssh "partition", cleanup.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv to completion without throwing. */
function run(argv: string[], opts: { timeoutMs?: number } = {}): Promise<Result> {
  const [cmd, ...args] = argv;
  return new Promise((resolve) => {
    execFile(cmd!, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Names in `ip netns list` / `ip -o link` starting with `<prefix>-`. */
async function leftoverNames(prefix: string): Promise<string[]> {
  const netns = (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
  const links = (await run(['ip', '-o', 'link', 'show'])).stdout.split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '');
  return [...netns, ...links].filter((n) => n.startsWith(`${prefix}-`));
}

/** A process that exists and is not a zombie (nothing here reaps orphans, so killed ones may linger as zombies). */
function isRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

describe('SSH test hosts in network namespaces', () => {
  const prefix = 'sysshtst';
  let th: TestHosts;
  let startMs = 0;
  const ssh = (host: string, command: string, extra: string[] = []) => run(['ssh', '-F', th.sshConfigFile, ...extra, host, command]);

  beforeAll(async () => {
    const t0 = Date.now();
    th = await startTestHosts(3, { prefix });
    startMs = Date.now() - t0;
  });
  afterAll(async () => {
    await th?.cleanup();
  });

  it('comes up quickly with one ssh config, strict host keys and a key only the hosts accept', async () => {
    expect(startMs).toBeLessThan(5000); // ~0.5 s measured; generous for a loaded machine
    expect(th.hosts.map((h) => h.name)).toEqual(['h1', 'h2', 'h3']);
    const config = fs.readFileSync(th.sshConfigFile, 'utf8');
    expect(config).toMatch(/StrictHostKeyChecking yes/);
    expect(config).toMatch(/BatchMode yes/);
    for (const h of th.hosts) {
      expect(h).toMatchObject({ port: 22, user: 'root' });
      expect(h.host).toMatch(/^10\.213\.\d+\.1\d$/);
      expect(fs.statSync(h.identityFile).mode & 0o777).toBe(0o600);
      const r = await ssh(h.name, 'hostname', ['-o', 'StrictHostKeyChecking=yes']);
      expect(r).toMatchObject({ code: 0, stdout: `${h.name}\n` });
    }
  });

  it('refuses a host whose key does not match known_hosts', async () => {
    const [h1, h2] = th.hosts;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssh-hosts-kh-'));
    try {
      // h1's address with h2's key: a "changed" host key.
      const h2Key = fs.readFileSync(h2!.knownHosts, 'utf8').split('\n').find((l) => l.startsWith(`${h2!.host} `))!;
      const wrong = path.join(dir, 'wrong');
      fs.writeFileSync(wrong, h2Key.replace(h2!.host, h1!.host) + '\n');
      const changed = await ssh('h1', 'true', ['-o', `UserKnownHostsFile=${wrong}`]);
      expect(changed.code).toBe(255);
      expect(changed.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
      // No entry at all: strict checking refuses too.
      const empty = path.join(dir, 'empty');
      fs.writeFileSync(empty, '');
      const unknown = await ssh('h1', 'true', ['-o', `UserKnownHostsFile=${empty}`]);
      expect(unknown.code).toBe(255);
      expect(unknown.stderr).toMatch(/Host key verification failed/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives each host its own hostname, HOME and /tmp, with node and python3 on PATH', async () => {
    const r = await ssh('h1', 'hostname; echo "$HOME"; pwd; command -v node python3; echo one > /tmp/only-h1; echo two > ~/only-h1');
    expect(r.code).toBe(0);
    const [hostname, home, cwd, node, python] = r.stdout.trim().split('\n');
    expect({ hostname, home, cwd }).toEqual({ hostname: 'h1', home: '/root', cwd: '/root' });
    expect(node).toMatch(/\/node$/);
    expect(python).toMatch(/\/python3$/);

    // Seen from this machine, h1's /root is its `home`; h2 and this machine's /root do not have the files.
    expect(fs.readFileSync(path.join(th.hosts[0]!.home, 'only-h1'), 'utf8')).toBe('two\n');
    expect(fs.existsSync('/tmp/only-h1')).toBe(false);
    expect(fs.existsSync(path.join(os.homedir(), 'only-h1'))).toBe(false);
    const onH2 = await ssh('h2', 'hostname; ls -A /tmp ~');
    expect(onH2.stdout).toMatch(/^h2\n/);
    expect(onH2.stdout).not.toMatch(/only-h1/);
    expect(await th.execOn('h1', ['cat', '/tmp/only-h1', '/root/only-h1'])).toBe('one\ntwo\n');
    expect(await th.execOn('h3', ['ls', '-A', '/tmp', '/root'])).not.toMatch(/only-h1/);
  });

  it('keeps a tmux session started on h1 on h1', async () => {
    expect((await ssh('h1', 'tmux new-session -d -s probe sleep 600')).code).toBe(0);
    expect((await ssh('h1', 'tmux has-session -t probe')).code).toBe(0);
    const onH2 = await ssh('h2', 'tmux has-session -t probe');
    expect(onH2.code).not.toBe(0);
    expect(onH2.stderr).toMatch(/no server running|can't find session|error connecting/);
    expect(await th.execOn('h1', ['tmux', 'list-sessions', '-F', '#{session_name}'])).toBe('probe\n');
  });

  it('rsyncs a small tree from here to h2 only', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'ssh-hosts-rsync-'));
    try {
      fs.mkdirSync(path.join(src, 'a', 'b'), { recursive: true });
      fs.writeFileSync(path.join(src, 'top.txt'), 'top\n');
      fs.writeFileSync(path.join(src, 'a', 'b', 'deep.bin'), Buffer.alloc(100_000, 7));
      const r = await run(['rsync', '-a', '-e', `ssh -F ${th.sshConfigFile}`, `${src}/`, 'h2:tree/']);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      const files = (await th.execOn('h2', ['find', 'tree', '-type', 'f'])).trim().split('\n').sort();
      expect(files).toEqual(['tree/a/b/deep.bin', 'tree/top.txt']);
      expect(fs.readFileSync(path.join(th.hosts[1]!.home, 'tree', 'a', 'b', 'deep.bin'))).toEqual(Buffer.alloc(100_000, 7));
      expect(fs.existsSync(path.join(th.hosts[0]!.home, 'tree'))).toBe(false);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
  });

  it('stopSshd cuts ssh to one host only, keeps its processes, and startSshd brings it back', async () => {
    await th.stopSshd('h1');
    const t0 = Date.now();
    const down = await ssh('h1', 'true', ['-o', 'ConnectTimeout=2']);
    expect(down.code).toBe(255);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await ssh('h2', 'true')).code).toBe(0);
    // h1's tmux server outlived its sshd.
    expect(await th.execOn('h1', ['tmux', 'list-sessions', '-F', '#{session_name}'])).toBe('probe\n');

    await th.startSshd('h1');
    const up = await ssh('h1', 'tmux has-session -t probe && hostname');
    expect(up).toMatchObject({ code: 0, stdout: 'h1\n' });
  });

  it('cleanup leaves no sshd, tmux server, namespace, bridge or directory behind', async () => {
    const pids: number[] = [];
    for (const h of th.hosts) {
      const listed = (await run(['ip', 'netns', 'pids', `${prefix}-${h.name}`])).stdout;
      pids.push(...listed.split('\n').filter(Boolean).map(Number));
    }
    // A short-lived process may end between the listing and this read: it has no name to give.
    const comms = pids.map((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    });
    expect(comms).toContain('tmux: server');
    expect(comms.filter((c) => c === 'sshd').length).toBeGreaterThanOrEqual(3);
    expect(await leftoverNames(prefix)).toEqual(expect.arrayContaining([`${prefix}-br`, `${prefix}-h1`]));

    await th.cleanup();
    await th.cleanup(); // safe twice

    expect(pids.filter(isRunning)).toEqual([]);
    expect(await leftoverNames(prefix)).toEqual([]);
    // sshd's command line names its config, mounted inside the host at /run/switchyard-test-<prefix>-<name>.
    expect((await run(['pgrep', '-f', `switchyard-test-${prefix}-`])).stdout).toBe('');
    expect(fs.existsSync(path.dirname(th.hosts[0]!.home))).toBe(false);
    expect(fs.existsSync(path.dirname(th.sshConfigFile))).toBe(false);
  });
});

describe('SSH test hosts: reuse of a prefix', () => {
  it("removes a previous run's leftovers with the same names first, and the old handle's cleanup spares the new run", async () => {
    const prefix = 'sysshre';
    const first = await startTestHosts(1, { prefix });
    const second = await startTestHosts(1, { prefix }).catch(async (err) => {
      await first.cleanup();
      throw err;
    });
    try {
      await first.cleanup(); // must not touch `second`
      const r = await run(['ssh', '-F', second.sshConfigFile, 'h1', 'hostname']);
      expect(r).toMatchObject({ code: 0, stdout: 'h1\n' });
      expect((await run(['ip', 'netns', 'list'])).stdout.match(new RegExp(`^${prefix}-h1\\b`, 'gm'))).toHaveLength(1);
    } finally {
      await second.cleanup();
    }
    expect(await leftoverNames(prefix)).toEqual([]);
  });
});

describe('SSH test hosts: loopback fallback (SWITCHYARD_TEST_HOSTS=loopback)', () => {
  it('runs one sshd per host on 127.0.0.1 with per-host HOME and tmux, and cleans up', async () => {
    const saved = process.env.SWITCHYARD_TEST_HOSTS;
    process.env.SWITCHYARD_TEST_HOSTS = 'loopback';
    let th: TestHosts | undefined;
    try {
      th = await startTestHosts(2, { prefix: 'sysshlo' });
    } finally {
      if (saved === undefined) delete process.env.SWITCHYARD_TEST_HOSTS;
      else process.env.SWITCHYARD_TEST_HOSTS = saved;
    }
    try {
      const [h1, h2] = th.hosts;
      expect(h1).toMatchObject({ host: '127.0.0.1' });
      expect(h1!.port).not.toBe(h2!.port);
      const ssh = (host: string, command: string) => run(['ssh', '-F', th!.sshConfigFile, host, command]);
      expect(await ssh('h1', 'pwd; echo x > here; tmux new-session -d -s lo sleep 600')).toMatchObject({ code: 0, stdout: `${h1!.home}\n` });
      expect(fs.existsSync(path.join(h1!.home, 'here'))).toBe(true);
      expect((await ssh('h2', 'test -e here || tmux has-session -t lo')).code).not.toBe(0);
      expect(await th.execOn('h1', ['tmux', 'list-sessions', '-F', '#{session_name}'])).toBe('lo\n');
    } finally {
      await th.cleanup();
    }
    expect((await run(['pgrep', '-f', path.dirname(th.sshConfigFile)])).stdout).toBe('');
    expect(fs.existsSync(th.sshConfigFile)).toBe(false);
  });
});
