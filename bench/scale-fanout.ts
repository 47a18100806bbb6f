// A fleet search's fan-out at scale (not a test): npx tsx bench/scale-fanout.ts
// HOSTS hosts x SHARDS shards (default 100 x 1,000, ten shards a host) fanned out and started
// through the production path a `make fleet-search` takes: SshBackend.prepare (the project and
// the runner to every host, sync_parallel at a time, one tar into each empty copy), then
// submitMany per host, each shard's runner started in its own tmux session, over a fresh
// connection pool as a fresh process would have. The experiment is `true`: its shards end at
// once. Timed from the first connection to the last tmux session started; then every shard is
// waited for and must have succeeded, so each runner ran for real (on CPU the fan-out left, see
// below). Baseline beside it: the same fan-out to one host with one shard (what every host costs
// at the least). Target: <= 30 s at 100 hosts x 1,000 shards. The hosts are real sshd in network
// namespaces (test/helpers/ssh-hosts.ts, two sets of 50), as root; the repository pushed is 2 MB
// in 200 files. SCALE_FANOUT=10x100,30x300,100x1000 (the default) measures each size, first
// with the runners left out (see below), then on the real path.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os, { availableParallelism } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Handle } from '../scripts/lib/backends/backend.js';
import { SshBackend } from '../scripts/lib/backends/ssh.js';
import { TERMINAL } from '../scripts/lib/runner/attempt-spec.js';
import { RemoteHost } from '../scripts/lib/remote/remote-host.js';
import { SshPool } from '../scripts/lib/ssh/pool.js';
import { targetFromConfig, type SshTarget } from '../scripts/lib/ssh/target.js';
import { FileStore } from '../scripts/lib/store/file-store.js';
import { testAttemptSpec } from '../test/helpers/runner-process.js';
import { startTestHosts, type TestHosts } from '../test/helpers/ssh-hosts.js';
import { makeRandomRepo, now } from './lib/measure.js';

const SIZES = (process.env.SCALE_FANOUT ?? '10x100,30x300,100x1000').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const TARGET_S = 30;

/** Seconds of CPU this machine has spent busy, all cores together (/proc/stat, in USER_HZ = 100). */
function machineBusy(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
  return (user + nice + system + irq + softirq + steal) / 100;
}
const PER_SET = 50; // the test bed's most hosts in one set
const RUNNER = path.resolve('dist/runner/run-attempt.mjs');

/**
 * A CPU cgroup whose tasks run only when the machine has nothing else to run (cgroup v1's cpu
 * hierarchy, or v2 with cpu enabled), and the mount that shows the same hierarchy on a host: the
 * hosts see a sysfs of their own (`ip netns exec` mounts one).
 */
function idleCgroup(name: string): { mount: string[]; remove(): void } {
  const v1 = '/sys/fs/cgroup/cpu';
  const withCpu = (d: string) => existsSync(`${d}/cgroup.controllers`) && readFileSync(`${d}/cgroup.subtree_control`, 'utf8').includes('cpu');
  const v2 = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].find(withCpu);
  const parent = existsSync(`${v1}/cpu.shares`) ? v1 : v2;
  if (!parent) throw new Error('scale-fanout needs a cgroup CPU controller (cgroup v1 cpu, or v2 with cpu enabled) to run the runners apart');
  const dir = `${parent}/${name}`;
  mkdirSync(dir, { recursive: true });
  if (existsSync(`${dir}/cpu.idle`)) writeFileSync(`${dir}/cpu.idle`, '1');
  else writeFileSync(parent === v1 ? `${dir}/cpu.shares` : `${dir}/cpu.weight`, parent === v1 ? '2' : '1');
  const remove = () => {
    try {
      rmdirSync(dir);
    } catch (err) {
      process.stdout.write(`left the cgroup ${dir} in place: ${(err as Error).message}\n`);
    }
  };
  return { mount: parent === v1 ? ['-t', 'cgroup', '-o', 'cpu', 'cgroup'] : ['-t', 'cgroup2', 'cgroup2'], remove };
}

const SHARDS_END_WITHIN_MS = 15 * 60_000;

/** Polls every shard (one call a host) until all have ended; throws unless every one succeeded. */
async function everyShardSucceeded(fleet: SshBackend, handles: readonly Handle[]): Promise<void> {
  const byHost = new Map<string, Handle[]>();
  for (const h of handles) {
    const host = h.host as string;
    if (!byHost.has(host)) byHost.set(host, []);
    byHost.get(host)!.push(h);
  }
  const deadline = Date.now() + SHARDS_END_WITHIN_MS;
  for (const [host, mine] of byHost) {
    for (;;) {
      // Only each shard's state: its events are not read (as SshBackend.logs polls).
      const polls = await fleet.pollMany(mine.map((handle) => ({ handle, eventsFrom: Number.MAX_SAFE_INTEGER })));
      const open = polls.filter((p) => p.unanswered || !TERMINAL.has(p.state));
      if (!open.length) {
        const bad = polls.find((p) => p.state !== 'succeeded');
        if (bad) throw new Error(`a shard on ${host} ended ${bad.state}: ${bad.reason ?? ''}`);
        break;
      }
      if (Date.now() > deadline) throw new Error(`${open.length} shards on ${host} still open after ${SHARDS_END_WITHIN_MS / 60_000} minutes`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

if (!existsSync(RUNNER)) spawnSync('node', ['build.mjs'], { stdio: 'inherit' });
const repo = path.resolve('bench/.tmp/scale-fanout-repo');
makeRandomRepo(repo, 2, 200);
const storeDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-scalefanout-store-'));
const most = Math.max(...SIZES.map(([h]) => h));
const sets: TestHosts[] = [];
const setupPool = new SshPool();
const RUNNERS_CGROUP = 'switchyard-scale-runners';
const runners = idleCgroup(RUNNERS_CGROUP);
try {
  process.stdout.write(`starting ${most} sshd hosts in network namespaces ...\n`);
  for (let i = 0; i * PER_SET < most; i++) sets.push(await startTestHosts(Math.min(PER_SET, most - i * PER_SET), { prefix: `syscale${i}` }));
  const targets: SshTarget[] = sets.flatMap((set, s) =>
    set.hosts.map((h) => targetFromConfig(`s${s}${h.name}`, { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts })),
  );
  // On real hosts each shard's runner (a node process, ~0.2 s of CPU for an experiment that ends
  // at once) runs on that host's own cores; here all 1,000 would share this machine's 2 with the
  // fan-out they stand apart from. They run in a cgroup that gets only the CPU nothing else wants:
  // the real runner, started the real way, then every shard is waited for (everyShardSucceeded).
  // (Not SCHED_IDLE or nice: tmux starts each runner in a session of its own, and the kernel's
  // autogroup scheduling gives every session a fair share of the CPU, whatever ranks within it.)
  const idleNode = path.resolve('bench/.tmp/scale-fanout-idle-node');
  const cpuMount = '/tmp/switchyard-scale-cpu'; // on each host, in its own mount namespace
  writeFileSync(idleNode, `#!/bin/sh\necho $$ > ${cpuMount}/${RUNNERS_CGROUP}/cgroup.procs || exit 1\nexec ${process.execPath} "$@"\n`, { mode: 0o755 });
  const mountScript = 'mkdir -p "$0" && { mountpoint -q "$0" || mount "$@" "$0"; }';
  await Promise.all(targets.map(async (t) => {
    const r = await setupPool.exec(t, ['sh', '-c', mountScript, cpuMount, ...runners.mount]);
    if (r.code !== 0) throw new Error(`mounting the cgroup hierarchy on ${t.name}: ${r.stderr.trim()}`);
  }));

  /** A fan-out to the first `hosts` hosts, `shards` shards spread evenly, into new empty host folders. */
  /** `runtime`: what the hosts' runtime/node is: node in the idle cgroup, or a stand-in that only sleeps, to leave the runners out. */
  const fanOut = async (hosts: number, shards: number, round: string, runtime = idleNode): Promise<{ s: number; prepare: number; cpu: number; busy: number; ended?: number }> => {
    const used = targets.slice(0, hosts);
    const names = used.map((t) => t.name);
    const root = `scale-${round}`;
    // Bootstrapped hosts (a node runtime in place), nothing else: as make bootstrap leaves them.
    await Promise.all(used.map(async (t) => {
      const h = new RemoteHost(t, root, setupPool);
      await h.run(['mkdir', '-p', h.layout.runtime]);
      await h.run(['ln', '-sf', runtime, h.layout.node]);
    }));
    const pool = new SshPool();
    const fleet = new SshBackend({
      name: 'fleet', fleet: 'scale', hosts: names, perHost: Math.ceil(shards / hosts), lostAfterMs: 30_000, gpus: 0, syncParallel: 8,
      openHost: async (name) => new RemoteHost(used.find((x) => x.name === name)!, root, pool),
      projectRoot: repo, store: new FileStore('file://store', storeDir), runnerBundle: RUNNER,
    });
    const run = `scale-${round}`;
    const spec = (i: number) =>
      testAttemptSpec({ run_id: run, unit_id: `${run}/shards/${i}`, command: ['true'], cwd: '.', ckpt_every_sec: 60, shard_index: i, shard_count: shards, store: 'file://../store' });
    try {
      const t0 = now();
      const cpu0 = process.cpuUsage();
      const busy0 = machineBusy();
      const prepared = await fleet.prepare(names, () => {});
      const failed = [...prepared].filter(([, err]) => err);
      if (failed.length) throw new Error(`prepare failed on ${failed.length} hosts, first ${failed[0]![0]}: ${failed[0]![1]!.message}`);
      const prepare = now() - t0;
      const started = (await Promise.all(names.map((name, h) => fleet.submitMany(Array.from({ length: shards }, (_, i) => i).filter((i) => i % hosts === h).map((i) => ({ spec: spec(i), slot: name })))))).flat();
      const refused = started.find((x) => x instanceof Error);
      if (refused) throw refused;
      if (started.length !== shards) throw new Error(`${started.length} of ${shards} shards started`);
      const cpu = process.cpuUsage(cpu0);
      const fanned = { s: now() - t0, prepare, cpu: (cpu.user + cpu.system) / 1e6, busy: machineBusy() - busy0 };
      if (runtime !== idleNode) return fanned;
      await everyShardSucceeded(fleet, started as Handle[]);
      return { ...fanned, ended: now() - t0 };
    } finally {
      await pool.close();
      await Promise.all(used.map((t) => setupPool.exec(t, ['sh', '-c', `tmux -L switchyard kill-server; rm -rf ${root}`]).catch(() => undefined)));
    }
  };

  process.stdout.write('(figures from a shared, loaded 2-core machine: every host and every runner shares its cores)\n');
  const { s: floor } = await fanOut(1, 1, 'floor');
  process.stdout.write(`1 host x 1 shard: ${floor.toFixed(2)} s (the floor)\n`);
  const line = (r: Awaited<ReturnType<typeof fanOut>>, shards: number) =>
    `${r.s.toFixed(2)} s (${r.prepare.toFixed(2)} s preparing the hosts, ${(r.s - r.prepare).toFixed(2)} s starting the shards; this process ${r.cpu.toFixed(1)} s CPU, ` +
    `the machine ${r.busy.toFixed(1)} s of ${(r.s * availableParallelism()).toFixed(1)} s; ${(r.s / floor).toFixed(1)}x the floor, ${(shards / r.s).toFixed(0)} shards/s)`;
  // Measured first with the hosts' node replaced by a script that sleeps a second (a session whose
  // command exits at once can take the tmux server down before its client hears back): the
  // fan-out's own cost, with no runner at all.
  const sleeper = path.resolve('bench/.tmp/scale-fanout-sleeper');
  writeFileSync(sleeper, '#!/bin/sh\nexec sleep 1\n', { mode: 0o755 });
  /** One line of an error (an ssh error quotes the whole submit script). */
  const brief = (err: unknown) => {
    const msg = (err as Error).message.replace(/\s+/g, ' ');
    return msg.length > 240 ? `${msg.slice(0, 60)} ... ${msg.slice(-150)}` : msg;
  };
  for (const [hosts, shards] of SIZES) {
    try {
      const r = await fanOut(hosts, shards, `bare-${hosts}x${shards}`, sleeper);
      process.stdout.write(`${hosts} hosts x ${shards} shards, runners left out: ${line(r, shards)}\n`);
    } catch (err) {
      process.stdout.write(`${hosts} hosts x ${shards} shards, runners left out, did not complete: ${brief(err)}\n`);
      break;
    }
  }
  let atTarget = Infinity;
  let why = '';
  for (const [hosts, shards] of SIZES) {
    try {
      const r = await fanOut(hosts, shards, `${hosts}x${shards}`);
      if (hosts === most) atTarget = r.s;
      process.stdout.write(`${hosts} hosts x ${shards} shards: fanned out and started in ${line(r, shards)}; every shard ended, succeeded, ${r.ended!.toFixed(1)} s from the start\n`);
    } catch (err) {
      why = `${hosts} hosts x ${shards} shards did not complete: ${brief(err)}`;
      process.stdout.write(`${why}\n`);
      break;
    }
  }
  const ok = atTarget <= TARGET_S && most >= 100 && SIZES.some(([h, n]) => h === most && n >= 1000);
  process.stdout.write(`fan-out at ${most} hosts: ${Number.isFinite(atTarget) ? `${atTarget.toFixed(2)} s` : why} (target <= ${TARGET_S} s at 100 hosts x 1,000 shards): ${ok ? 'MET' : 'MISSED'}\n`);
  process.exitCode = ok ? 0 : 1;
} finally {
  await setupPool.close();
  for (const set of sets) await set.cleanup();
  rmSync(storeDir, { recursive: true, force: true });
  runners.remove();
}
