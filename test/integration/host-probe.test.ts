// Host probes against real sshd hosts (test/helpers/ssh-hosts.ts): one round over up and dead
// hosts, GPUs read from an nvidia-smi on the host's PATH (a stand-in script printing real-looking
// CSV, or hanging), the timer and its history, and remote files read over SFTP.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { sharedPool } from '../../scripts/lib/remote/open-host.js';
import { closeProbeConnections, HostWatch, probeHost, probeHosts, readRemoteFile, WHOLE_FILE_LIMIT, type HostHealth } from '../../scripts/lib/probe/index.js';
import { waitFor } from '../helpers/sandbox.js';
import { startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

const CONNECT_TIMEOUT_SEC = 6; // nvidia-smi then gets 3 s
let hosts: TestHosts;
let project: { config: ReturnType<typeof ConfigSchema.parse> };

const CSV = [
  '0, NVIDIA H100 80GB HBM3, GPU-11111111-2222-3333-4444-555555555555, 93, 61440, 81559, 67, 612.30, Disabled',
  '1, NVIDIA H100 80GB HBM3, GPU-66666666-7777-8888-9999-000000000000, [N/A], [Not Supported], 81559, 35, [N/A], Enabled',
].join('\n');

/** Namespaced hosts only: a host's own /usr/local/sbin (first on its PATH) can be given a stand-in nvidia-smi. */
const namespaced = () => hosts.enter('h1') !== null;

/** Puts an executable `nvidia-smi` with `body` first on the host's PATH (a bind mount in its own mount namespace). */
async function fakeNvidiaSmi(name: string, body: string): Promise<void> {
  const home = hosts.hosts.find((h) => h.name === name)!.home;
  fs.mkdirSync(path.join(home, 'fakebin'), { recursive: true });
  fs.writeFileSync(path.join(home, 'fakebin', 'nvidia-smi'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const mounted = await hosts.execOn(name, ['sh', '-c', 'grep -q " /usr/local/sbin " /proc/self/mounts && echo yes || echo no']);
  if (mounted.trim() === 'no') await hosts.execOn(name, ['mount', '--bind', '/root/fakebin', '/usr/local/sbin']);
}

/**
 * The pids of a namespaced test host's processes: those in the network namespace of the one that
 * carries SWITCHYARD_TEST_HOST=hprobe/<name> (sshd overwrites its own environment).
 */
function hostProcesses(name: string): number[] {
  const marker = `SWITCHYARD_TEST_HOST=hprobe/${name}`;
  const read = (file: string, how: (f: string) => string) => {
    try {
      return how(file);
    } catch {
      return null; // gone, or not ours to read
    }
  };
  const pids = fs.readdirSync('/proc').filter((f) => /^\d+$/.test(f));
  const holder = pids.find((pid) => read(`/proc/${pid}/environ`, (f) => fs.readFileSync(f, 'latin1'))?.split('\0').includes(marker));
  const net = holder && read(`/proc/${holder}/ns/net`, fs.readlinkSync);
  if (!net) return [];
  return pids.filter((pid) => read(`/proc/${pid}/ns/net`, fs.readlinkSync) === net).map(Number);
}

/** A process's memory cgroup (v1: its memory line; v2: its 0:: line), or null once it is gone. */
function memoryCgroupOf(pid: number, v1: boolean): string | null {
  try {
    const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => (v1 ? /^\d+:memory:/.test(l) : l.startsWith('0::')));
    return line ? line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1) : null;
  } catch {
    return null;
  }
}

function moveTo(cgroup: string, pid: number): void {
  try {
    fs.writeFileSync(path.join(cgroup, 'cgroup.procs'), String(pid));
  } catch {
    // it has exited
  }
}

beforeAll(async () => {
  hosts = await startTestHosts(3, { prefix: 'hprobe' });
  const entries = Object.fromEntries(
    hosts.hosts.map((h, i) => [
      h.name,
      { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts, connect_timeout: CONNECT_TIMEOUT_SEC, price_per_hour: i === 0 ? 1.5 : undefined },
    ]),
  );
  project = { config: ConfigSchema.parse({ hosts: entries, fleets: { lab: ['h1', 'h2'] } }) };
}, 60_000);

afterAll(async () => {
  await closeProbeConnections();
  await hosts?.cleanup();
});

describe('probeHosts', () => {
  it('reads every host that answers: load, cpus, memory, disk, tmux, no GPUs', async () => {
    await hosts.execOn('h2', ['tmux', 'new-session', '-d', '-s', 'probe-me', 'sleep 600']);
    const [h1, h2] = await probeHosts(project, ['h1', 'h2']);
    for (const h of [h1!, h2!]) {
      expect(h).toMatchObject({ state: 'up', error: null, gpuHealth: 'none', gpus: [] }); // no nvidia-smi on the test hosts
      expect(h.load1).toBeGreaterThanOrEqual(0);
      expect(h.cpus).toBeGreaterThanOrEqual(1);
      expect(h.memTotalBytes).toBeGreaterThan(h.memAvailBytes!);
      expect(h.diskTotalBytes).toBeGreaterThan(h.diskFreeBytes!);
      expect(h.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(h2!.tmux).toContain('probe-me');
    expect(h1).toMatchObject({ host: 'h1', fleets: ['lab'], pricePerHour: 1.5 });
    expect(h2!.pricePerHour).toBeNull();
  });

  it("lists the attempts' sessions on switchyard's own tmux socket beside the user's own", async () => {
    await hosts.execOn('h1', ['tmux', '-L', 'switchyard', 'new-session', '-d', '-s', 'sy-run1-s0-1', 'sleep 600']);
    await hosts.execOn('h1', ['tmux', 'new-session', '-d', '-s', 'mine', 'sleep 600']);
    const h1 = await probeHost(project, 'h1');
    expect(h1.tmux).toEqual(expect.arrayContaining(['sy-run1-s0-1', 'mine']));
  });

  it('reads the disk of a project folder on a mount whose name and folder hold spaces', async (ctx) => {
    if (!namespaced()) return ctx.skip(); // the mount is made in the host's own mount namespace
    await hosts.execOn('h2', ['sh', '-c', 'mkdir -p "/root/big disk" && mount -t tmpfs -o size=64m "scratch disk" "/root/big disk" && mkdir -p "/root/big disk/switchyard" && ln -sfn "/root/big disk" /root/data']);
    try {
      const config = ConfigSchema.parse({ hosts: { h2: { ...project.config.hosts.h2, root: 'data/switchyard' } } });
      const h2 = await probeHost({ config }, 'h2');
      expect({ total: h2.diskTotalBytes, free: h2.diskFreeBytes }).toEqual({ total: 64 << 20, free: 64 << 20 });
    } finally {
      await hosts.execOn('h2', ['sh', '-c', 'rm -f /root/data; umount "/root/big disk"']);
    }
  });

  it("reads a host's memory under its processes' cgroup limit (a container's) as that limit, not the machine's", async (ctx) => {
    if (!namespaced()) return ctx.skip(); // its processes are found by their network namespace
    const v1 = '/sys/fs/cgroup/memory';
    const base = fs.existsSync(`${v1}/cgroup.procs`) ? v1 : fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : null;
    if (!base) return ctx.skip();
    const dir = path.join(base, `sy-hprobe-${process.pid}`);
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, base === v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(256 << 20));
    } catch {
      fs.rmSync(dir, { recursive: false, force: true });
      return ctx.skip(); // no memory cgroup can be made here
    }
    // Every process of h1 (its sshd, the pooled connection's, its sessions') joins it, as a container's do, and goes back after.
    // The host's own /sys (its network namespace's) has no cgroup mounts: it gets this machine's, as a container has its own.
    const mount = base === v1 ? 'mount -t tmpfs cg /sys/fs/cgroup && mkdir /sys/fs/cgroup/memory && mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory' : 'mount -t cgroup2 cgroup2 /sys/fs/cgroup';
    await hosts.execOn('h1', ['sh', '-c', `grep -q " /sys/fs/cgroup${base === v1 ? '/memory' : ''} " /proc/self/mounts || { ${mount}; }`]);
    const back = hostProcesses('h1').map((pid) => [pid, memoryCgroupOf(pid, base === v1)] as const);
    expect(back.length).toBeGreaterThan(1);
    for (const [pid] of back) moveTo(dir, pid);
    try {
      const h1 = await probeHost(project, 'h1');
      expect(h1.memTotalBytes).toBe(256 << 20);
      expect(h1.memAvailBytes).toBeGreaterThan(0);
      expect(h1.memAvailBytes).toBeLessThanOrEqual(256 << 20);
    } finally {
      // Back, with whatever they started meanwhile, to where the host's first process was.
      const home = path.join(base, back.find(([, h]) => h !== null)?.[1] ?? '/');
      const inside = () => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
      await waitFor(() => (inside().forEach((pid) => moveTo(home, Number(pid))), inside().length === 0), 10_000, () => `${inside().join(' ')} to leave ${dir}`);
      fs.rmdirSync(dir);
      await hosts.execOn('h1', ['sh', '-c', base === v1 ? 'umount /sys/fs/cgroup/memory && umount /sys/fs/cgroup' : 'umount /sys/fs/cgroup']);
    }
  });

  it('a host whose sshd is stopped is down, with its reason, while the others are up', async () => {
    await probeHosts(project); // warm: every host has a pooled connection
    await hosts.stopSshd('h3');
    try {
      const t0 = Date.now();
      const round = await probeHosts(project);
      expect(Date.now() - t0).toBeLessThan(CONNECT_TIMEOUT_SEC * 1000 + 20_000);
      expect(round.map((h) => [h.host, h.state])).toEqual([['h1', 'up'], ['h2', 'up'], ['h3', 'down']]);
      const h3 = round[2]!;
      expect(h3.error).toMatch(/connection refused|connection lost|closed/);
      expect(h3).toMatchObject({ latencyMs: null, load1: null, gpuHealth: 'unknown', gpus: [], tmux: [] });
    } finally {
      await hosts.startSshd('h3');
    }
  });

  it('a host that stops answering is down within its deadline and never holds up the others', async (ctx) => {
    if (!namespaced()) return ctx.skip(); // its link is taken down inside its network namespace
    await probeHosts(project); // h3's pooled connection is open, then its link goes silent
    await hosts.execOn('h3', ['ip', 'link', 'set', 'eth0', 'down']);
    try {
      const order: string[] = [];
      const t0 = Date.now();
      const round = await Promise.all(['h1', 'h2', 'h3'].map((n) => probeHost(project, n).then((h) => (order.push(n), h))));
      const elapsed = Date.now() - t0;
      expect(round.map((h) => h.state)).toEqual(['up', 'up', 'down']);
      expect(order.at(-1)).toBe('h3');
      expect(round[2]!.error).toBe('no answer within its 6s connect_timeout');
      expect(elapsed).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_SEC * 1000 - 100);
      expect(elapsed).toBeLessThan(CONNECT_TIMEOUT_SEC * 1000 + 20_000);
    } finally {
      await hosts.execOn('h3', ['ip', 'link', 'set', 'eth0', 'up']);
    }
  });
});

describe('GPUs from nvidia-smi on the host', () => {
  it('reads the GPUs one nvidia-smi call lists: [N/A] and [Not Supported] are null, MIG is MIG', async (ctx) => {
    if (!namespaced()) return ctx.skip();
    await fakeNvidiaSmi('h1', `case "$*" in *--query-gpu=index,name,uuid,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,mig.mode.current*--format=csv,noheader,nounits*) ;; *) echo "unexpected arguments: $*" >&2; exit 2;; esac\ncat <<'CSV'\n${CSV}\nCSV`);
    const [h1] = await probeHosts(project, ['h1']);
    expect(h1).toMatchObject({ state: 'up', gpuHealth: 'ok', gpuError: null });
    expect(h1!.gpus).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-11111111-2222-3333-4444-555555555555', utilPct: 93, memUsedMiB: 61440, memTotalMiB: 81559, tempC: 67, powerW: 612.3, mig: false },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-66666666-7777-8888-9999-000000000000', utilPct: null, memUsedMiB: null, memTotalMiB: 81559, tempC: 35, powerW: null, mig: true },
    ]);
  });

  it('a hung nvidia-smi marks the GPUs unhealthy and the rest of the probe still arrives', async (ctx) => {
    if (!namespaced()) return ctx.skip();
    await fakeNvidiaSmi('h1', 'exec sleep 613');
    const [h1] = await probeHosts(project, ['h1']);
    expect(h1).toMatchObject({ state: 'up', gpuHealth: 'unhealthy', gpuError: 'nvidia-smi did not answer within 3s', gpus: [] });
    expect(h1!.cpus).toBeGreaterThanOrEqual(1);
    expect(h1!.memTotalBytes).toBeGreaterThan(0);
    // the hung nvidia-smi was killed, not left behind
    const left = await hosts.execOn('h1', ['sh', '-c', 'pgrep -fx "sleep 613" | wc -l']);
    expect(Number(left.trim())).toBe(0);
  });

  it('a failing nvidia-smi is unhealthy with what it said', async (ctx) => {
    if (!namespaced()) return ctx.skip();
    await fakeNvidiaSmi('h1', 'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver."; exit 9');
    const [h1] = await probeHosts(project, ['h1']);
    expect(h1).toMatchObject({ state: 'up', gpuHealth: 'unhealthy', gpuError: 'nvidia-smi exited 9: NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' });
  });
});

describe('HostWatch', () => {
  it('probes on a timer without overlapping a host, keeps a bounded history, and stops cleanly', async () => {
    const watch = new HostWatch(project, { intervalMs: 100, historyLength: 3, hosts: ['h1', 'h2'] });
    const rounds: HostHealth[][] = [];
    const seen: HostHealth[] = [];
    watch.onRound((hs) => rounds.push(hs));
    watch.onHost((h) => seen.push(h));
    watch.start();
    const deadline = Date.now() + 30_000;
    while (rounds.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await watch.stop();
    expect(rounds.length).toBeGreaterThanOrEqual(5);
    const snap = watch.snapshot();
    expect(snap.map((v) => v.latest.host)).toEqual(['h1', 'h2']);
    for (const v of snap) {
      expect(v.history).toHaveLength(3);
      const times = v.history.map((p) => p.t);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(v.history.at(-1)!.load1).toBe(v.latest.load1);
    }
    // no overlap: each probe of a host started after the previous one ended
    for (const name of ['h1', 'h2']) {
      const probes = seen.filter((h) => h.host === name);
      for (const [i, h] of probes.entries()) {
        if (i > 0) expect(Date.parse(h.probedAt)).toBeGreaterThanOrEqual(Date.parse(probes[i - 1]!.probedAt) + probes[i - 1]!.latencyMs!);
      }
    }
    const count = seen.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(seen.length).toBe(count); // nothing after stop()
  });
});

describe('readRemoteFile', () => {
  it('reads a tail, a whole file, and an empty tail over SFTP on the pooled connection', async () => {
    await probeHosts(project, ['h1']);
    const connects = (await sharedPool()).stats().connects;
    const home = hosts.hosts[0]!.home;
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n') + '\n';
    fs.mkdirSync(path.join(home, 'logs'), { recursive: true });
    fs.writeFileSync(path.join(home, 'logs', 'stdout.log'), text);
    expect((await readRemoteFile(project, 'h1', 'logs/stdout.log', { tailBytes: 20 })).toString()).toBe(text.slice(-20));
    expect((await readRemoteFile(project, 'h1', 'logs/stdout.log')).toString()).toBe(text);
    expect((await readRemoteFile(project, 'h1', 'logs/stdout.log', { tailBytes: 1e9 })).toString()).toBe(text);
    expect((await readRemoteFile(project, 'h1', 'logs/stdout.log', { tailBytes: 0 })).length).toBe(0);
    expect((await sharedPool()).stats().connects).toBe(connects); // no new handshake
  });

  it('refuses to read a huge file whole, and reads its tail', async () => {
    const file = path.join(hosts.hosts[0]!.home, 'logs', 'huge.log');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '');
    fs.truncateSync(file, WHOLE_FILE_LIMIT + 1); // sparse
    fs.appendFileSync(file, 'the end\n');
    await expect(readRemoteFile(project, 'h1', 'logs/huge.log')).rejects.toThrow(/^ssh h1: logs\/huge\.log is 16\.0 MB; read its tail \(tailBytes\)/);
    expect((await readRemoteFile(project, 'h1', 'logs/huge.log', { tailBytes: 8 })).toString()).toBe('the end\n');
  });

  it('a missing file is one line naming the host and the path', async () => {
    const err = await readRemoteFile(project, 'h1', 'logs/nope.log').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^ssh h1: cannot read logs\/nope\.log over SFTP: .*No such file/);
    expect((err as Error).message).not.toContain('\n');
  });
});
