// The dashboard's runs API with 5,000 runs in the index: p95 latency of GET /api/runs (the first
// page of 100, newest first, the page the runs table asks for every few seconds), each request
// reading the index afresh (the one-second cache the server keeps is emptied before each). The
// baseline beside it: the same page, already serialised, from a bare express route on the same
// machine (what HTTP and JSON alone cost). Target: p95 at most 50 ms.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { createDashboard } from '../dashboard/app.js';
import { findRoot, loadConfig } from '../scripts/lib/config/load-config.js';
import type { Project } from '../scripts/lib/project.js';
import type { RunRecord } from '../scripts/lib/runs/run-record.js';
import { StateDb } from '../scripts/lib/runs/state-db.js';
import { openStore } from '../scripts/lib/store/open-store.js';

const RUNS = 5000;
const REQUESTS = 200;
const TARGET_MS = 50;

/** A finished local run shaped like a real penguins record (about 3 KB of JSON). */
function record(i: number): RunRecord {
  const t = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  const digest = i.toString(16).padStart(64, 'a');
  const slug = ['penguins', 'knn', 'titanic'][i % 3]!;
  return {
    run_id: `${slug}-default-${t.slice(0, 10).replace(/-/g, '')}T${t.slice(11, 16).replace(':', '')}-${digest.slice(-8)}`,
    experiment: slug,
    created_at: t,
    pins: {
      code: { commit: 'f'.repeat(40), dirty_sha256: null },
      data: { root: 'c'.repeat(64), files: 2, bytes: 12876 },
      env: { lock_sha256: 'd'.repeat(64), python: '3.11.7', node: 'v20.20.2' },
      config: 'e'.repeat(64),
      seed: 42,
      digest,
    } as unknown as RunRecord['pins'],
    spec: {
      train: { command: 'python3 train.py', checkpoint_every_sec: 2, grace_sec: 60, env: { EPOCHS: '8000' }, cwd: null, metrics_from: null },
      predict: { command: 'python3 predict.py', output: 'submission.csv' },
      submit: { file: 'submission.csv', message: 'softmax regression baseline' },
      data: { dir: 'data', include: ['**/*'], exclude: [] },
      code: [],
      secrets: [],
      seed: 42,
      shards: { count: 1 },
      resources: { gpus: 0, cpus: 1, memory_gb: null },
      setup: null,
      notes: 'x'.repeat(1200),
    } as unknown as RunRecord['spec'],
    command: { train: 'python3 train.py', predict: 'python3 predict.py' } as unknown as RunRecord['command'],
    backends: ['local'],
    replay_of: null,
    sharded: false,
    units: [
      {
        index: 0,
        moved_from: [],
        attempts: [
          {
            n: 1, backend: 'local', handle: { backend: 'local', run_id: 'x', attempt: 1, pid: 1 }, state: 'succeeded', reason: null, exit_code: 0,
            started_at: t, ended_at: t, restored_step: null, last_step: 8000, events_seen: 12, metrics: { step: 8000, loss: 0.0123 + i * 1e-7, train_accuracy: 0.99 },
          },
        ],
      },
    ],
  };
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;

async function timeGets(url: string, before: () => void): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    before();
    const t0 = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    ms.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  }
  return ms;
}

const listen = (app: express.Express) =>
  new Promise<{ url: string; close: () => void }>((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }));
  });

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-runs-'));
try {
  const root = findRoot();
  const db = new StateDb(path.join(dir, 'state.db'));
  for (let i = 0; i < RUNS; i++) db.upsert(record(i));
  const project: Project = {
    root,
    stateDir: dir,
    config: await loadConfig(root),
    store: await openStore(`file://${path.join(dir, 'store')}`, root),
    db,
    ledgerPath: path.join(dir, 'ledger.jsonl'),
    workDir: (id) => path.join(dir, 'work', id),
  };
  let port = 0;
  const { app, runs } = createDashboard({ project, bindHost: '127.0.0.1', port: () => port });
  const dash = await listen(app);
  port = Number(new URL(dash.url).port);
  const page = await (await fetch(`${dash.url}/api/runs`)).text();
  const bare = express();
  bare.get('/api/runs', (_req, res) => void res.type('application/json').send(page));
  const base = await listen(bare);

  // Interleaved halves, so drift on a noisy machine lands on both sides.
  const api: number[] = [];
  const baseline: number[] = [];
  for (let round = 0; round < 2; round++) {
    baseline.push(...(await timeGets(`${base.url}/api/runs`, () => {})));
    api.push(...(await timeGets(`${dash.url}/api/runs`, () => runs.invalidate())));
  }
  const cached = await timeGets(`${dash.url}/api/runs`, () => {});
  dash.close();
  base.close();
  db.close();

  const got = p95(api);
  const verdict = got <= TARGET_MS ? 'MET' : 'MISSED';
  console.log(
    `runs API, ${RUNS} runs: p95 ${got.toFixed(1)} ms uncached (${(got / p95(baseline)).toFixed(1)}× the bare route's ${p95(baseline).toFixed(1)} ms), ` +
      `${p95(cached).toFixed(1)} ms within the server's 1 s cache; target ≤ ${TARGET_MS} ms: ${verdict}`,
  );
  process.exitCode = verdict === 'MET' ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
