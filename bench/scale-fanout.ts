// A fleet search's fan-out at scale (not a test): npx tsx bench/scale-fanout.ts
// HOSTS hosts x SHARDS shards (default 100 x 1,000, ten shards a host) fanned out and started
// through the production path a `make fleet-search` takes: SshBackend.prepare (the project and
// the runner to every host, sync_parallel at a time, one tar into each empty copy), then
// submitMany per host, each shard's runner started in its own tmux session, over a fresh
// connection pool as a fresh process would have. The experiment is `true`: its shards end at
// once. Timed from the first connection to the last tmux session started. Baseline beside it:
// the same fan-out to one host with one shard (what every host costs at the least). Target:
// <= 30 s at 100 hosts x 1,000 shards. The hosts are real sshd in network namespaces
// (test/helpers/ssh-hosts.ts, two sets of 50), as root; the repository pushed is 2 MB in 200
// files. SCALE_FANOUT=10x100,30x300,100x1000 (the default) measures each size.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SshBackend } from '../scripts/lib/backends/ssh.js';
import { RemoteHost } from '../scripts/lib/remote/remote-host.js';
import { SshPool } from '../scripts/lib/ssh/pool.js';
import { targetFromConfig, type SshTarget } from '../scripts/lib/ssh/target.js';
import { FileStore } from '../scripts/lib/store/file-store.js';
import { testAttemptSpec } from '../test/helpers/runner-process.js';
import { startTestHosts, type TestHosts } from '../test/helpers/ssh-hosts.js';
import { makeRandomRepo, now } from './lib/measure.js';

const SIZES = (process.env.SCALE_FANOUT ?? '10x100,30x300,100x1000').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const TARGET_S = 30;
const PER_SET = 50; // the test bed's most hosts in one set
const RUNNER = path.resolve('dist/runner/run-attempt.mjs');

if (!existsSync(RUNNER)) spawnSync('node', ['build.mjs'], { stdio: 'inherit' });
const repo = path.resolve('bench/.tmp/scale-fanout-repo');
makeRandomRepo(repo, 2, 200);
const storeDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-scalefanout-store-'));
const most = Math.max(...SIZES.map(([h]) => h));
const sets: TestHosts[] = [];
const setupPool = new SshPool();
try {
  process.stdout.write(`starting ${most} sshd hosts in network namespaces ...\n`);
  for (let i = 0; i * PER_SET < most; i++) sets.push(await startTestHosts(Math.min(PER_SET, most - i * PER_SET), { prefix: `syscale${i}` }));
  const targets: SshTarget[] = sets.flatMap((set, s) =>
    set.hosts.map((h) => targetFromConfig(`s${s}${h.name}`, { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts })),
  );
  const node = process.execPath;

  /** A fan-out to the first `hosts` hosts, `shards` shards spread evenly, into new empty host folders. */
  const fanOut = async (hosts: number, shards: number, round: string): Promise<{ s: number; prepare: number; cpu: number }> => {
    const used = targets.slice(0, hosts);
    const names = used.map((t) => t.name);
    const root = `scale-${round}`;
    // Bootstrapped hosts (a node runtime in place), nothing else: as make bootstrap leaves them.
    await Promise.all(used.map(async (t) => {
      const h = new RemoteHost(t, root, setupPool);
      await h.run(['mkdir', '-p', h.layout.runtime]);
      await h.run(['ln', '-sf', node, h.layout.node]);
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
      const prepared = await fleet.prepare(names, () => {});
      const failed = [...prepared].filter(([, err]) => err);
      if (failed.length) throw new Error(`prepare failed on ${failed.length} hosts, first ${failed[0]![0]}: ${failed[0]![1]!.message}`);
      const prepare = now() - t0;
      const started = (await Promise.all(names.map((name, h) => fleet.submitMany(Array.from({ length: shards }, (_, i) => i).filter((i) => i % hosts === h).map((i) => ({ spec: spec(i), slot: name })))))).flat();
      const refused = started.find((x) => x instanceof Error);
      if (refused) throw refused;
      if (started.length !== shards) throw new Error(`${started.length} of ${shards} shards started`);
      const cpu = process.cpuUsage(cpu0);
      return { s: now() - t0, prepare, cpu: (cpu.user + cpu.system) / 1e6 };
    } finally {
      await pool.close();
      await Promise.all(used.map((t) => setupPool.exec(t, ['sh', '-c', `tmux -L switchyard kill-server; rm -rf ${root}`]).catch(() => undefined)));
    }
  };

  process.stdout.write('(figures from a shared, loaded 2-core machine: every host and every runner shares its cores)\n');
  const { s: floor } = await fanOut(1, 1, 'floor');
  process.stdout.write(`1 host x 1 shard: ${floor.toFixed(2)} s (the floor)\n`);
  let atTarget = Infinity;
  for (const [hosts, shards] of SIZES) {
    const { s, prepare, cpu } = await fanOut(hosts, shards, `${hosts}x${shards}`);
    if (hosts === most) atTarget = s;
    process.stdout.write(`${hosts} hosts x ${shards} shards: fanned out and started in ${s.toFixed(2)} s (${prepare.toFixed(2)} s preparing the hosts, ${(s - prepare).toFixed(2)} s starting the shards; this process ${cpu.toFixed(1)} s CPU; ${((s / floor)).toFixed(1)}x the floor, ${((shards / s)).toFixed(0)} shards/s)\n`);
  }
  const ok = atTarget <= TARGET_S && most >= 100 && SIZES.some(([h, n]) => h === most && n >= 1000);
  process.stdout.write(`fan-out at ${most} hosts: ${atTarget.toFixed(2)} s (target <= ${TARGET_S} s at 100 hosts x 1,000 shards): ${ok ? 'MET' : 'MISSED'}\n`);
  process.exitCode = ok ? 0 : 1;
} finally {
  await setupPool.close();
  for (const set of sets) await set.cleanup();
  rmSync(storeDir, { recursive: true, force: true });
}
