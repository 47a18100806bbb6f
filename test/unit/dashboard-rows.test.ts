// The runs table's rows come from run summaries, not records: each must say what the full record
// says (checkpoint step, attempt, hosts, state), and the cost is read from the record only for
// the rows sent, and only where the inventory prices a host.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunsCache } from '../../dashboard/runs-view.js';
import type { Project } from '../../scripts/lib/project.js';
import { lastStep, type AttemptRecord, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { StateDb } from '../../scripts/lib/runs/state-db.js';

let dir: string;
let db: StateDb;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dashboard-rows-'));
  db = new StateDb(path.join(dir, 'state.db'));
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
function attempt(n: number, host: string, last_step: number | null, hours: number): AttemptRecord {
  const started = Date.UTC(2026, 10, 30, 12);
  return {
    n, backend: 'fleet', handle: { backend: 'fleet', host, session: `s${n}` }, state: 'succeeded', reason: null, exit_code: 0,
    started_at: new Date(started).toISOString(), ended_at: new Date(started + hours * HOUR).toISOString(), restored_step: null, last_step, events_seen: 1, metrics: null,
  };
}

function run(id: string, units: AttemptRecord[][]): RunRecord {
  return {
    run_id: `knn-fleet-20261130T${id}-0badf00d`, experiment: 'knn/fleet', created_at: `2026-11-30T${id.slice(0, 2)}:00:00.000Z`,
    pins: { code: { commit: 'c', dirty_sha256: null }, data: { root: 'r', files: 1, bytes: 1 }, env: { lock_sha256: 'l', python: null, node: 'v20' }, config: 'x', seed: 0, digest: `d${id}` },
    spec: {} as RunRecord['spec'], command: { train: 'true', predict: null }, backends: ['fleet'], replay_of: null,
    units: units.map((attempts, index) => ({ index, attempts, moved_from: [] })), sharded: units.length > 1, fleet: 'lab',
  };
}

describe('runs table rows', () => {
  it('say what the records say, and cost only the rows sent on priced hosts', async () => {
    const search = run('1200', [[attempt(1, 'h1', 10, 2)], [attempt(1, 'h3', 9, 1), attempt(2, 'h2', 12, 1)]]);
    const single = run('1300', [[attempt(1, 'h2', 40, 1), attempt(2, 'h2', 55, 1)]]);
    for (const r of [search, single]) db.upsert(r);
    const config = { hosts: { h1: { price_per_hour: 1.5 }, h2: {}, h3: {} } } as unknown as Project['config'];
    const cache = new RunsCache({ db, config } as unknown as Project);
    const rows = await cache.rows();
    expect(rows.map((r) => [r.run_id, r.hosts, r.ckpt_step, r.attempt, r.units, r.state, r.cost])).toEqual([
      [single.run_id, ['h2'], lastStep(single), 2, { done: 1, total: 1 }, 'succeeded', null],
      [search.run_id, ['h1', 'h2'], lastStep(search), null, { done: 2, total: 2 }, 'succeeded', null],
    ]);
    const costed = cache.costed(rows);
    expect(costed.map((r) => r.cost)).toEqual([null, 3]); // 2 hours on h1 at $1.5; h2 has no price
  });

  it('change when a record changes; a listing of unchanged runs parses and builds nothing again', async () => {
    const a = run('1200', [[attempt(1, 'h1', 10, 2)]]);
    const b = run('1300', [[attempt(1, 'h2', 40, 1)]]);
    for (const r of [a, b]) db.upsert(r);
    const cache = new RunsCache({ db, config: { hosts: {} } } as unknown as Project, 0);
    const before = await cache.rows();
    const again = await cache.rows();
    expect(again).not.toBe(before); // listed afresh (no time to live)
    expect(again[0]).toBe(before[0]);
    expect(again[1]).toBe(before[1]);
    expect(db.summaries()[1]).toBe(db.summaries()[1]);

    b.units[0]!.attempts.push({ ...attempt(2, 'h3', 55, 1), state: 'failed' });
    db.upsert(b);
    const after = await cache.rows();
    expect(after[1]).toBe(before[1]);
    expect(after[0]).toMatchObject({ run_id: b.run_id, hosts: ['h3'], ckpt_step: 55, attempt: 2, state: 'failed' });
  });
});
