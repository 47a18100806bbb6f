// SSH route: re-sync of an unchanged 200 MB repo (target <= 1.1x rsync's own no-op beside it),
// and the poll of a running attempt (the real runner, started by SshBackend, logging and
// writing metrics) through SshBackend.pollMany over the pooled connection, vs the same poll
// script by a fresh `ssh host cmd` (targets <= 10 ms and >= 25x faster).
// Runs against a real sshd in a network namespace (test/helpers/ssh-hosts.ts), as root.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { SshBackend } from '../scripts/lib/backends/ssh.js';
import { pollArgs } from '../scripts/lib/remote/launch.js';
import { RemoteHost } from '../scripts/lib/remote/remote-host.js';
import { POLL_SCRIPT } from '../scripts/lib/remote/scripts.js';
import { SshPool } from '../scripts/lib/ssh/pool.js';
import { rsyncArgv, SYNC_EXCLUDES } from '../scripts/lib/ssh/rsync.js';
import { sshArgv, targetFromConfig } from '../scripts/lib/ssh/target.js';
import { FileStore } from '../scripts/lib/store/file-store.js';
import { testAttemptSpec } from '../test/helpers/runner-process.js';
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

  // One attempt running on the host: it has logged a line, written a metrics line and had its
  // checkpoint restored (an event), as a training run between its checkpoints.
  const runner = path.resolve('dist/runner/run-attempt.mjs');
  if (!existsSync(runner)) throw new Error(`${runner} is missing: run make build`);
  const project = path.resolve('bench/.tmp/ssh-poll-project');
  rmSync(project, { recursive: true, force: true });
  mkdirSync(project, { recursive: true });
  await host.run(['mkdir', '-p', host.layout.runtime]);
  await host.run(['ln', '-sf', process.execPath, host.layout.node]);
  const store = new FileStore('file://store', path.join(project, 'store'));
  const backend = new SshBackend({ name: 'ssh', hosts: ['h1'], openHost: async () => host, perHost: 1, lostAfterMs: 60_000, gpus: 0, syncParallel: 1, projectRoot: project, store, runnerBundle: runner });
  const spec = testAttemptSpec({ run_id: 'bench-20261202T0000-00000000', command: ['sh', '-c', 'echo epoch 1 loss 0.5; echo \'{"step": 1, "loss": 0.5}\' >> "$SWITCHYARD_METRICS"; exec sleep 600'], cwd: '.', ckpt_every_sec: 600, store: 'file://../store' });
  const [handle] = await backend.submitMany([{ spec, slot: 'h1' }]);
  if (!handle || handle instanceof Error) throw handle ?? new Error('no answer to the submit');
  const request = { handle, eventsFrom: 1 };
  for (let seen = false; !seen; ) {
    const [p] = await backend.pollMany([request]);
    if (p!.state !== 'running' && p!.state !== 'lost') throw new Error(`the attempt ended: ${p!.state} ${p!.reason ?? ''}`);
    seen = p!.state === 'running' && p!.metrics?.step === 1 && p!.last_line === 'epoch 1 loss 0.5';
    if (!seen) await new Promise((r) => setTimeout(r, 100));
  }
  const args = pollArgs('--m--', [{ dir: host.layout.attemptDir(spec.unit_id, 1), session: String(handle.session), eventsFrom: 1 }]);
  const probe = ['sh', '-c', POLL_SCRIPT, 'sh', ...args];

  const pooled: number[] = [];
  const fresh: number[] = [];
  for (let i = 0; i < ROUNDS * 4; i++) {
    let t0 = now();
    await backend.pollMany([request]);
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
  console.log(`  poll, pooled connection   ${poll.toFixed(1)} ms   (a running attempt, SshBackend.pollMany)   target <= ${POLL_MAX_MS} ms   ${mark(poll <= POLL_MAX_MS)}`);
  console.log(`  poll, fresh ssh           ${(median(fresh) * 1000).toFixed(1)} ms`);
  console.log(`  pooled speed-up           ${ratio.toFixed(1)}x   target >= ${POLL_MIN_SPEEDUP}x   ${mark(ratio >= POLL_MIN_SPEEDUP)}`);
  if (resync > RESYNC_MAX_RATIO || poll > POLL_MAX_MS || ratio < POLL_MIN_SPEEDUP) process.exitCode = 1;
  await backend.cancel(handle, { force: true });
} finally {
  await pool.close();
  await hosts.cleanup();
}
