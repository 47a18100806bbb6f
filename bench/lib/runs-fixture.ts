// An index of many finished runs for the dashboard's benches: a project over a temporary folder
// whose index holds `count` penguins-like run records (about 3 KB of JSON each).
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type express from 'express';
import { findRoot, loadConfig } from '../../scripts/lib/config/load-config.js';
import type { Project } from '../../scripts/lib/project.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';
import { StateDb } from '../../scripts/lib/runs/state-db.js';
import { openStore } from '../../scripts/lib/store/open-store.js';

/** A finished local run shaped like a real penguins record (about 3 KB of JSON). */
export function runRecord(i: number): RunRecord {
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

/** A project whose index holds `count` finished runs; `close` removes it. */
export async function projectWithRuns(count: number): Promise<{ project: Project; close(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-runs-'));
  const root = findRoot();
  const db = new StateDb(path.join(dir, 'state.db'));
  for (let i = 0; i < count; i++) db.upsert(runRecord(i));
  const project: Project = {
    root,
    stateDir: dir,
    config: await loadConfig(root),
    store: await openStore(`file://${path.join(dir, 'store')}`, root),
    db,
    ledgerPath: path.join(dir, 'ledger.jsonl'),
    workDir: (id) => path.join(dir, 'work', id),
  };
  return {
    project,
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Serves `app` on a free loopback port. */
export const listen = (app: express.Express) =>
  new Promise<{ url: string; close: () => void }>((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }));
  });
