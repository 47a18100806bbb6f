// Polling a SLURM cluster with 200 tracked running jobs: how many sacct calls one tick makes
// (target 1, whatever the number of jobs: clusters throttle sacct storms) and how long the tick
// takes, the backend's pollMany of all of them against its baseline in the same run, the same
// poll asked job by job (one sacct call and one round trip per job, as a per-job poller does).
// sacct here is a stand-in on the PATH that counts its calls and answers every job RUNNING at
// once; each job's attempt folder holds a runner's files (its live view too, as AttemptLive
// writes it), so the reads are real.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SlurmBackend } from '../scripts/lib/backends/slurm.js';
import { ClusterSchema } from '../scripts/lib/config/cluster-config.js';
import { AttemptLive } from '../scripts/lib/runner/attempt-live.js';
import { LocalLogin } from '../scripts/lib/slurm/login-node.js';
import { median, now, sizeFromEnv } from './lib/measure.js';

const JOBS = sizeFromEnv('BENCH_JOBS', 200);
const TICKS = 3;
const TARGET_CALLS = 1;

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-slurm-'));
const calls = path.join(dir, 'calls');
const bin = path.join(dir, 'bin');
mkdirSync(bin);
writeFileSync(
  path.join(bin, 'sacct'),
  `#!/bin/sh\necho x >> "${calls}"\ni=1; while [ $i -le ${JOBS} ]; do echo "$i|RUNNING|0:0|0|00:01:00|n1|None"; i=$((i+1)); done\n`,
);
chmodSync(path.join(bin, 'sacct'), 0o755);
process.env.PATH = `${bin}:${process.env.PATH}`;
const sacctCalls = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;
writeFileSync(calls, '');

try {
  const login = new LocalLogin({ root: dir, stateDir: dir, runnerBundle: path.join(dir, 'runner.mjs'), workDir: (u) => path.join(dir, 'work', u) });
  const backend = new SlurmBackend({ cluster: 'bench', entry: ClusterSchema.parse({}), login });
  const submitted_at = new Date().toISOString();
  const reqs = Array.from({ length: JOBS }, (_, i) => ({
    handle: { backend: 'slurm' as const, cluster: 'bench', job: String(i + 1), unit: `r/shards/${i}`, attempt: 1, dir: path.join(dir, 'work', `r/shards/${i}`, 'attempts/1'), submitted_at, grace_sec: 60 },
    eventsFrom: 1, // a tick of a long run: the event its runner wrote at the start was read before
  }));

  for (const r of reqs) {
    mkdirSync(r.handle.dir, { recursive: true });
    writeFileSync(path.join(r.handle.dir, 'status.json'), JSON.stringify({ state: 'running', reason: null }, null, 2) + '\n');
    writeFileSync(path.join(r.handle.dir, 'events.jsonl'), '{"type":"restored","step":null}\n');
    writeFileSync(path.join(r.handle.dir, 'metrics.jsonl'), '{"step":10,"loss":0.5}\n');
    writeFileSync(path.join(r.handle.dir, 'stdout.log'), 'epoch 10\n');
    AttemptLive.begin(r.handle.dir);
  }
  const ticks: number[] = [];
  const perTick: number[] = [];
  for (let t = 0; t < TICKS; t++) {
    const before = sacctCalls();
    const t0 = now();
    const results = await backend.pollMany(reqs);
    ticks.push(now() - t0);
    perTick.push(sacctCalls() - before);
    const off = results.find((r) => r.state !== 'running' || r.last_line !== 'epoch 10' || r.metrics?.step !== 10);
    if (off) throw new Error(`bench: a poll did not see every job running, with its last line and metrics: ${JSON.stringify(off)}`);
  }

  // Baseline: the same poll, job by job.
  const before = sacctCalls();
  const b0 = now();
  for (const r of reqs) await backend.pollMany([r]);
  const baseline = now() - b0;
  const baseCalls = sacctCalls() - before;

  const ms = median(ticks) * 1000;
  const calls1 = Math.max(...perTick);
  console.log(`slurm poll, ${JOBS} tracked jobs (median of ${TICKS} ticks)`);
  console.log(`  job by job (baseline)   ${baseCalls} sacct calls, ${(baseline * 1000).toFixed(0)} ms per tick`);
  console.log(`  pollMany                ${calls1} sacct call${calls1 === 1 ? '' : 's'}, ${ms.toFixed(0)} ms per tick (${(baseline * 1000 / ms).toFixed(1)}x faster, ${baseCalls / calls1}x fewer calls)`);
  const met = calls1 <= TARGET_CALLS;
  console.log(`  target: ${TARGET_CALLS} sacct call per tick: ${met ? 'MET' : 'MISSED'}`);
  if (!met) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
