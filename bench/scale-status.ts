// make status at scale (not a test): npx tsx bench/scale-status.ts
// An index of RUNS runs and 10 x RUNS attempts (default 5,000 and 50,000), written through the
// product's own record and index code (run-record.ts, StateDb) in a throwaway copy of the
// repository, then: p95 of listRuns + the table make status prints (the library call the runs
// API serves), beside a bare SELECT of the full records (less than listing cost before each run
// kept a summary beside its record); and p95 of the whole
// `make -s status` process, beside the same process over an empty index. Target: <= 50 ms p95
// for the library call at 5,000 runs. SCALE_STATUS_RUNS=500,1500,5000 (the default) measures
// each size, for how the cost grows; the target is checked at the largest.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { listRuns } from '../scripts/lib/actions/look.js';
import { runsTable } from '../scripts/lib/cli/runs-table.js';
import { openProject } from '../scripts/lib/project.js';
import type { AttemptRecord, RunRecord, UnitRecord } from '../scripts/lib/runs/run-record.js';
import { loadExperiment } from '../scripts/lib/spec/experiment.js';
import { createSandbox } from '../test/helpers/sandbox.js';
import { now } from './lib/measure.js';

const SIZES = (process.env.SCALE_STATUS_RUNS ?? '500,1500,5000').split(',').map(Number);
const LIB_ROUNDS = 40;
const PROC_ROUNDS = 15;
const TARGET_MS = 50;

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1]!;
const hex = (n: number, len: number) => (n.toString(16).padStart(8, '0').repeat(8)).slice(0, len);

/** `runs` records, 10 attempts a run on average: 4 in 5 runs of one unit with 2 attempts (a
 *  preemption, then success), 1 in 5 a 40-shard fleet search with 2 shards retried once. */
function makeRuns(count: number, spec: RunRecord['spec']): RunRecord[] {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const attempt = (n: number, host: string, runId: string, unit: string, last: boolean, at: number): AttemptRecord => ({
    n,
    backend: 'ssh',
    handle: { backend: 'ssh', host, run_id: runId, unit, attempt: n, root: '/home/sy/.switchyard', session: `sy-${hex(at, 12)}` },
    state: last ? 'succeeded' : 'preempted',
    reason: last ? null : 'host went away',
    exit_code: last ? 0 : null,
    started_at: new Date(at).toISOString(),
    ended_at: new Date(at + 600_000).toISOString(),
    restored_step: n > 1 ? 400 : null,
    last_step: last ? 1000 : 400,
    events_seen: last ? 24 : 10,
    metrics: { step: last ? 1000 : 400, loss: 0.1234 + n / 100, accuracy: 0.91, lr: 0.001 },
  });
  return Array.from({ length: count }, (_, i) => {
    const at = t0 + i * 60_000;
    const sharded = i % 5 === 4;
    const digest = hex(i * 7919 + 1, 64);
    const runId = `penguins-default-${new Date(at).toISOString().replace(/[-:]/g, '').slice(0, 13)}-${digest.slice(-8)}`;
    const units: UnitRecord[] = sharded
      ? Array.from({ length: 40 }, (_, index) => ({
          index,
          attempts: index < 2 ? [attempt(1, `h${index}`, runId, `${runId}/shards/${index}`, false, at), attempt(2, `h${index + 1}`, runId, `${runId}/shards/${index}`, true, at)] : [attempt(1, `h${index % 10}`, runId, `${runId}/shards/${index}`, true, at)],
          moved_from: index < 2 ? [`h${index}`] : [],
        }))
      : [{ index: 0, attempts: [attempt(1, 'gpu-1', runId, runId, false, at), attempt(2, 'gpu-2', runId, runId, true, at)], moved_from: [] }];
    return {
      run_id: runId,
      experiment: 'penguins',
      created_at: new Date(at).toISOString(),
      pins: { code: { commit: hex(i, 40), dirty_sha256: null }, data: { root: hex(3, 64), files: 3, bytes: 18_000 }, env: { lock_sha256: hex(5, 64), python: '3.11.9', node: 'v20.20.2' }, config: hex(9, 64), seed: 0, digest },
      spec,
      command: { train: spec.train.command, predict: spec.predict?.command ?? null },
      backends: sharded ? ['fleet'] : ['ssh'],
      replay_of: null,
      units,
      sharded,
      ...(sharded ? { fleet: 'lab' } : {}),
    };
  });
}

const sb = createSandbox();
process.on('exit', () => sb.cleanup());
const makeStatus = () => {
  const t = now();
  const r = spawnSync('make', ['-s', 'status'], { cwd: sb.dir, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`make status exited ${r.status}`);
  return { s: now() - t, lines: r.stdout.toString().split('\n').length - 1 };
};
const procP95 = () => p95(Array.from({ length: PROC_ROUNDS }, () => makeStatus().s * 1000));

process.stdout.write('building the scripts in a copy of the repository ...\n');
makeStatus(); // builds dist/ once
const emptyMs = procP95();
process.stdout.write(`make -s status, empty index: p95 ${emptyMs.toFixed(0)} ms (the process floor)\n`);
process.stdout.write('(figures from a shared, loaded machine are noisy; compare a row with its floor)\n');

const spec = (await loadExperiment(sb.dir, 'penguins')).spec;
const dbFile = path.join(sb.dir, '.switchyard', 'state.db');
let libAtTarget = Infinity;
for (const runs of SIZES) {
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) rmSync(f, { force: true });
  let t = now();
  const project = await openProject(sb.dir);
  // The records go out of scope here: the measured calls run with only what make status holds.
  const attempts = ((records) => (project.db.replaceAll(records), records.reduce((n, r) => n + r.units.reduce((m, u) => m + u.attempts.length, 0), 0)))(makeRuns(runs, spec));
  const buildS = now() - t;

  const raw = new Database(dbFile, { readonly: true });
  const select = raw.prepare('SELECT record FROM runs ORDER BY created_at DESC, run_id DESC');
  const floor: number[] = [];
  const lib: number[] = [];
  const cpu: number[] = [];
  let lines = 0;
  // Apart, not interleaved: the records' tens of MB would leave their garbage to the other side.
  for (let r = 0; r < LIB_ROUNDS; r++) {
    t = now();
    const c = process.cpuUsage();
    const rows = await listRuns(project);
    lines = runsTable(rows).split('\n').length;
    lib.push((now() - t) * 1000);
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000);
  }
  for (let r = 0; r < LIB_ROUNDS / 4; r++) {
    t = now();
    select.all();
    floor.push((now() - t) * 1000);
  }
  raw.close();
  project.db.close();
  if (lines !== runs + 1) throw new Error(`status table has ${lines} lines for ${runs} runs`);
  const proc = procP95();
  const libMs = p95(lib);
  if (runs === Math.max(...SIZES)) libAtTarget = libMs;
  process.stdout.write(
    `${runs} runs, ${attempts} attempts (index built in ${buildS.toFixed(1)} s): listRuns + table p95 ${libMs.toFixed(1)} ms (CPU ${p95(cpu).toFixed(1)} ms) ` +
      `(a bare SELECT of the full records p95 ${p95(floor).toFixed(1)} ms); make -s status p95 ${proc.toFixed(0)} ms (${(proc - emptyMs).toFixed(0)} ms over the empty index)\n`,
  );
}

const ok = libAtTarget <= TARGET_MS && Math.max(...SIZES) >= 5000;
process.stdout.write(`listRuns + table at ${Math.max(...SIZES)} runs: p95 ${libAtTarget.toFixed(1)} ms (target <= ${TARGET_MS} ms at 5,000 runs): ${ok ? 'MET' : 'MISSED'}\n`);
process.exitCode = ok ? 0 : 1;
