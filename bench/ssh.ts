// SSH route: re-sync of an unchanged 200 MB repo (target <= 1.1x rsync's own no-op beside it),
// and poll latency over the pooled connection vs a fresh `ssh host cmd` (targets <= 10 ms and
// >= 25x faster).
// Runs against a real sshd in a network namespace (test/helpers/ssh-hosts.ts), as root.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { RemoteHost } from '../scripts/lib/remote/remote-host.js';
import { SshPool } from '../scripts/lib/ssh/pool.js';
import { rsyncArgv, SYNC_EXCLUDES } from '../scripts/lib/ssh/rsync.js';
import { sshArgv, targetFromConfig } from '../scripts/lib/ssh/target.js';
import { startTestHosts } from '../test/helpers/ssh-hosts.js';
import { makeRandomRepo, median, now, sizeFromEnv } from './lib/measure.js';

const REPO_MB = sizeFromEnv('BENCH_MB', 200);
const FILES = 2000;
const ROUNDS = 5;
const RESYNC_MAX_RATIO = 1.1;
const POLL_MAX_MS = 10;
const POLL_MIN_SPEEDUP = 25;

const hosts = await startTestHosts(1, { prefix: 'sybench' });
const pool = new SshPool();
try {
  const h = hosts.hosts[0]!;
  const target = targetFromConfig('h1', { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts });
  const host = new RemoteHost(target, 'switchyard', pool);
  const repo = path.resolve(`bench/.tmp/ssh-repo-${REPO_MB}`);
  makeRandomRepo(repo, REPO_MB, FILES);
  await host.syncRepo(repo); // first, full transfer

  const ours: number[] = [];
  const bare: number[] = [];
  const plain = rsyncArgv({ src: `${repo}/`, dest: 'switchyard/repo/', target, direction: 'push', excludes: SYNC_EXCLUDES, delete: true });
  for (let i = 0; i < ROUNDS; i++) {
    let t0 = now();
    spawnSync(plain[0]!, plain.slice(1), { stdio: 'ignore' });
    bare.push(now() - t0);
    t0 = now();
    await host.syncRepo(repo);
    ours.push(now() - t0);
  }

  const pooled: number[] = [];
  const fresh: number[] = [];
  const probe = ['sh', '-c', 'cat "$1" 2>/dev/null; tmux -L switchyard has-session -t =x 2>/dev/null; echo done', 'sh', 'switchyard/repo/.done'];
  await pool.exec(target, probe);
  for (let i = 0; i < ROUNDS * 4; i++) {
    let t0 = now();
    await pool.exec(target, probe);
    pooled.push(now() - t0);
    const argv = sshArgv(target, probe);
    t0 = now();
    spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    fresh.push(now() - t0);
  }

  const resync = median(ours) / median(bare);
  const poll = median(pooled) * 1000;
  const ratio = median(fresh) / median(pooled);
  const mark = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  console.log(`ssh route (median of ${ROUNDS} / ${ROUNDS * 4}, interleaved; ${REPO_MB} MB in ${FILES} files)`);
  console.log(`  re-sync, unchanged repo   ${median(ours).toFixed(3)} s   (rsync alone ${median(bare).toFixed(3)} s)   ${resync.toFixed(2)}x rsync   target <= ${RESYNC_MAX_RATIO}x   ${mark(resync <= RESYNC_MAX_RATIO)}`);
  console.log(`  poll, pooled connection   ${poll.toFixed(1)} ms   target <= ${POLL_MAX_MS} ms   ${mark(poll <= POLL_MAX_MS)}`);
  console.log(`  poll, fresh ssh           ${(median(fresh) * 1000).toFixed(1)} ms`);
  console.log(`  pooled speed-up           ${ratio.toFixed(1)}x   target >= ${POLL_MIN_SPEEDUP}x   ${mark(ratio >= POLL_MIN_SPEEDUP)}`);
  if (resync > RESYNC_MAX_RATIO || poll > POLL_MAX_MS || ratio < POLL_MIN_SPEEDUP) process.exitCode = 1;
} finally {
  await pool.close();
  await hosts.cleanup();
}
