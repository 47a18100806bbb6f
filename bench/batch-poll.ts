// The gcp-batch backend's poll of a 1,000-task job against the Batch stand-in (tasks held
// RUNNING without processes), driven by the real client: API calls per supervisor tick (target:
// 1 per job, one listTasks covering every task) and the tick's latency, against a baseline in the
// same run: one bare listTasks call for the same tasks. The runners' files are read from an
// empty local store, so the tick's cost is the API's and the backend's own.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GcpBatchBackend } from '../scripts/lib/backends/gcp-batch.js';
import { openBatchClient } from '../scripts/lib/batch/client.js';
import { ConfigSchema } from '../scripts/lib/config/config-schema.js';
import { FileStore } from '../scripts/lib/store/file-store.js';
import { startBatchStandin } from '../test/helpers/batch-standin/index.js';
import { median, now, sizeFromEnv } from './lib/measure.js';

const TASKS = sizeFromEnv('BENCH_TASKS', 1000);
const TICKS = 15;
const TARGET_CALLS = 1;
const PARENT = 'projects/bench-project/locations/us-central1';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-batch-poll-'));
const standin = await startBatchStandin({ holdTasks: true });
const client = await openBatchClient({ root: tmp, ...standin.clientOptions });
try {
  const [job] = await client.createJob({
    parent: PARENT,
    jobId: 'sy-bench-1000',
    job: { taskGroups: [{ taskCount: TASKS, taskSpec: { runnables: [{ script: { text: 'true' } }] } }], logsPolicy: { destination: 'CLOUD_LOGGING' } },
  });
  const name = job.name!;
  await standin.waitFor((e) => e.job === name && e.task === TASKS - 1 && e.state === 'RUNNING', { what: `task ${TASKS - 1} running` });

  const entry = { project: 'bench-project', region: 'us-central1', machine_type: 'e2-standard-2', secrets: { AWS_ACCESS_KEY_ID: 'projects/p/secrets/a/versions/1', AWS_SECRET_ACCESS_KEY: 'projects/p/secrets/b/versions/1' } };
  const config = ConfigSchema.parse({ defaults: { store: 's3://bench/store' }, batch: { cpu: entry } });
  const backend = new GcpBatchBackend({
    entry: 'cpu', config, projectRoot: tmp, stateDir: tmp, store: new FileStore('file://bench', path.join(tmp, 'store')), runnerBundle: '', openClient: async () => client,
  });
  const reqs = Array.from({ length: TASKS }, (_, task) => ({
    handle: { backend: 'gcp-batch' as const, entry: 'cpu', job: name, task, unit: `bench-default-20261130T1200-0badf00d/shards/${task}`, attempt: 1 },
    eventsFrom: 0,
  }));

  const calls = () => Object.values(standin.requests()).reduce((a, b) => a + b, 0);
  const ticks: number[] = [];
  const bare: number[] = [];
  let perTick = 0;
  for (let t = 0; t < TICKS; t++) {
    const before = calls();
    const t0 = now();
    const results = await backend.pollMany(reqs);
    ticks.push(now() - t0);
    perTick = Math.max(perTick, calls() - before);
    if (results.some((r) => r.state !== 'running')) throw new Error(`bench: a task is not running: ${JSON.stringify(results.find((r) => r.state !== 'running'))}`);
    const b0 = now();
    const [tasks] = await client.listTasks({ parent: `${name}/taskGroups/group0`, pageSize: TASKS }, { autoPaginate: false });
    bare.push(now() - b0);
    if (tasks.length !== TASKS) throw new Error(`bench: listTasks gave ${tasks.length} tasks`);
  }
  const tick = median(ticks) * 1000;
  const base = median(bare) * 1000;
  console.log(`gcp-batch poll, one job of ${TASKS} running tasks against the Batch stand-in (median of ${TICKS} ticks)`);
  console.log(`  bare listTasks (baseline)   ${base.toFixed(1)} ms`);
  console.log(`  backend tick                ${tick.toFixed(1)} ms (${(tick / base).toFixed(1)}x the bare call), ${perTick} API call(s) per tick`);
  console.log(`  target: at most ${TARGET_CALLS} API call per job per tick: ${perTick <= TARGET_CALLS ? 'MET' : 'MISSED'}`);
  if (perTick > TARGET_CALLS) process.exitCode = 1;
} finally {
  await client.close();
  await standin.close();
  rmSync(tmp, { recursive: true, force: true });
}
