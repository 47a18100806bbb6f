// Listing runs from their summaries: what make status and the runs API show must be what the
// full records say (states, shards done, checkpoint steps, metrics), in the same order, and an
// index written before summaries existed gets them when it is opened.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listRuns } from '../../scripts/lib/actions/look.js';
import { runsTable } from '../../scripts/lib/cli/runs-table.js';
import type { Project } from '../../scripts/lib/project.js';
import { runJson, runState, summarize, summaryState, type AttemptRecord, type AttemptState, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { StateDb } from '../../scripts/lib/runs/state-db.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'run-listing-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function attempt(n: number, state: AttemptState, last_step: number | null, metrics: Record<string, unknown> | null = null): AttemptRecord {
  const handle = state === 'running' ? { backend: 'ssh' as const, host: 'gpu-1', session: `s${n}` } : null;
  return { n, backend: 'ssh', handle, state, reason: null, exit_code: null, started_at: '2026-11-30T12:00:00.000Z', ended_at: null, restored_step: null, last_step, events_seen: 3, metrics };
}

function run(id: string, at: string, units: AttemptRecord[][], experiment = 'penguins'): RunRecord {
  return {
    run_id: `${experiment}-default-${id}-0badf00d`,
    experiment,
    created_at: at,
    pins: { code: { commit: 'c', dirty_sha256: null }, data: { root: 'r', files: 1, bytes: 1 }, env: { lock_sha256: 'l', python: null, node: 'v20' }, config: 'x', seed: 0, digest: `d${id}` },
    spec: {} as RunRecord['spec'],
    command: { train: 'true', predict: null },
    backends: ['ssh'],
    replay_of: null,
    units: units.map((attempts, index) => ({ index, attempts, moved_from: [] })),
    sharded: units.length > 1,
    ...(units.length > 1 ? { fleet: 'lab' } : {}),
  };
}

const single = { ...run('20261130T1200', '2026-11-30T12:00:00.000Z', [[attempt(1, 'preempted', 40), attempt(2, 'succeeded', 100, { step: 100, loss: 0.25 })]]), public_score: 0.8125 };
const sharded = run('20261130T1300', '2026-11-30T13:00:00.000Z', [[attempt(1, 'succeeded', 10)], [attempt(1, 'failed', null)], [attempt(1, 'lost', 7), attempt(2, 'succeeded', 12)]]);
const fresh = run('20261130T1400', '2026-11-30T14:00:00.000Z', [], 'knn');

describe('run summaries', () => {
  it('say what the record says, without its spec, pins or attempts', () => {
    for (const r of [single, sharded, fresh]) expect(summaryState(summarize(r))).toBe(runState(r));
    expect(summarize(single)).toMatchObject({ units: 1, attempts: 2, backend: 'ssh', metrics: { step: 100, loss: 0.25 }, states: { succeeded: 1 }, steps: { lo: 100, hi: 100, known: 1 }, live: [], public_score: 0.8125 });
    expect(summarize(sharded)).toMatchObject({ units: 3, attempts: 4, fleet: 'lab', metrics: null, states: { succeeded: 2, failed: 1 }, steps: { lo: 10, hi: 12, known: 2 } });
    expect(summarize(fresh)).toMatchObject({ units: 0, attempts: 0, backend: null, states: {}, steps: null });
    expect(summarize(fresh)).not.toHaveProperty('public_score');
  });

  it('keep what polls a live unit, and only for live units', () => {
    const live = run('20261130T1500', '2026-11-30T15:00:00.000Z', [[attempt(1, 'succeeded', 5)], [attempt(1, 'running', 2)]]);
    expect(summarize(live).live).toEqual([{ unit: 1, state: 'running', handle: { backend: 'ssh', host: 'gpu-1', session: 's1' }, events_seen: 3 }]);
    expect(JSON.stringify(summarize(live))).not.toContain('pins');
    expect(summarize(live).hosts).toEqual(['gpu-1']);
    expect(summarize(single).hosts).toEqual([]);
  });
});

describe('listing from the index', () => {
  it('lists newest first, filters by experiment, and reads a full record only when asked', async () => {
    const db = new StateDb(path.join(dir, 'state.db'));
    db.replaceAll([single, sharded, fresh]);
    const project = { db } as Project;
    const rows = await listRuns(project);
    expect(rows.map((r) => [r.summary.run_id, r.state, r.units])).toEqual([
      [fresh.run_id, 'created', { done: 0, total: 0 }],
      [sharded.run_id, 'failed', { done: 2, total: 3 }],
      [single.run_id, 'succeeded', { done: 1, total: 1 }],
    ]);
    expect(rows[2]!.metrics).toEqual({ step: 100, loss: 0.25 });
    expect(rows[1]!.run).toEqual(sharded);
    expect((await listRuns(project, 'knn')).map((r) => r.summary.run_id)).toEqual([fresh.run_id]);
    const table = runsTable(rows).split('\n');
    expect(table[0]).toMatch(/CKPT STEP\s+PUBLIC\s+CREATED/);
    expect(table[2]).toMatch(/failed \(2\/3 shards\)\s+4\s+fleet lab\s+-\s+-\s+-\.\.12\s+-\s+2026-11-30 13:00$/);
    expect(table[3]).toMatch(/succeeded\s+2\s+ssh\s+100\s+0\.2500\s+100\s+0\.8125\s+2026-11-30 12:00$/);
    expect(rows[2]!.publicScore).toBe(0.8125);
    db.remove(sharded.run_id);
    expect(db.summaries().map((s) => s.run_id)).toEqual([fresh.run_id, single.run_id]);
    db.close();
  });

  it('finds the newest finished and the newest unfinished run with some pins by their state, parsing no other', () => {
    const db = new StateDb(path.join(dir, 'state.db'));
    const pinned = (r: RunRecord, digest: string): RunRecord => ({ ...r, pins: { ...r.pins, digest } });
    const older = pinned(run('20261130T1000', '2026-11-30T10:00:00.000Z', [[attempt(1, 'succeeded', 1)]]), 'same');
    const newer = pinned(run('20261130T1100', '2026-11-30T11:00:00.000Z', [[attempt(1, 'succeeded', 2)]]), 'same');
    const stopped = pinned(run('20261130T0900', '2026-11-30T09:00:00.000Z', [[attempt(1, 'cancelled', 1)]]), 'same');
    db.replaceAll([older, newer, stopped, single]);
    expect(db.hasDigest('same')).toBe(true);
    expect(db.hasDigest('other')).toBe(false);
    expect(db.newestByDigest('same')).toEqual({ finished: newer, unfinished: stopped });
    expect(db.newestByDigest('other')).toEqual({ finished: null, unfinished: null });
    db.upsert({ ...stopped, units: [{ index: 0, attempts: [attempt(1, 'cancelled', 1), attempt(2, 'succeeded', 3)], moved_from: [] }] });
    expect(db.newestByDigest('same').unfinished).toBeNull(); // its state column follows the record
    db.close();
    // Found in the index, newest first: no sort, which would read every record with the pins.
    const raw = new Database(path.join(dir, 'state.db'), { readonly: true });
    for (const state of ["state = 'succeeded'", "state <> 'succeeded'"]) {
      const plan = raw.prepare(`EXPLAIN QUERY PLAN SELECT record FROM runs WHERE digest = ? AND ${state} ORDER BY created_at DESC, run_id DESC LIMIT 1`).all('same') as { detail: string }[];
      expect(plan.map((p) => p.detail).join('; ')).toBe('SEARCH runs USING INDEX runs_by_digest_time (digest=?)');
    }
    raw.close();
  });

  it('gives an index from before summaries its summaries, and its runs their newest-first index, when opened', () => {
    const file = path.join(dir, 'state.db');
    const old = new Database(file);
    old.exec(`CREATE TABLE runs (run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, digest TEXT NOT NULL, state TEXT NOT NULL,
      created_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_step INTEGER, record TEXT NOT NULL);
      CREATE INDEX runs_by_digest ON runs(digest); PRAGMA user_version = 1;`);
    old.prepare('INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(sharded.run_id, sharded.experiment, 'd', 'failed', sharded.created_at, sharded.created_at, null, runJson(sharded));
    old.close();
    const db = new StateDb(file);
    expect(db.summaries()).toEqual([summarize(sharded)]);
    db.close();
    const indexes = new Database(file, { readonly: true }).prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL").all() as { name: string }[];
    expect(indexes.map((i) => i.name)).toEqual(['runs_by_digest_time']);
  });
});
