// Two processes saving runs into one state db at once, as a laptop's `make train` and an agent
// or a second shell do: every save must wait its turn, none may fail with "database is locked".
// A save reads a run's row and then writes; unless it takes the write lock first, a write by the
// other process between the two fails it at once, whatever busy_timeout says.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { StateDb } from '../../scripts/lib/runs/state-db.js';

const SAVES = 1500;
let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'sy-statedb-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SAVER = `
import { StateDb } from 'STATE_DB';
const [file, id, saves] = process.argv.slice(2);
const run = {
  run_id: 'race-default-20261130T1200-' + id, experiment: 'race', created_at: '2026-11-30T12:00:00.000Z',
  pins: { digest: id }, spec: {}, command: { train: 'true', predict: null }, backends: ['local'], replay_of: null, sharded: false,
  units: [{ index: 0, moved_from: [], attempts: [{ n: 1, backend: 'local', handle: null, state: 'running', reason: null, exit_code: null,
    started_at: '2026-11-30T12:00:00.000Z', ended_at: null, restored_step: null, last_step: 0, events_seen: 0 }] }],
};
const db = new StateDb(file);
for (let i = 1; i <= Number(saves); i++) {
  run.units[0].attempts[0].last_step = i;
  db.upsert(run);
}
db.close();
`;

function saver(script: string, file: string, id: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, file, id, String(SAVES)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

it('two processes saving runs into one db at once: every save waits its turn', { timeout: 120_000 }, async () => {
  const file = path.join(dir, 'state.db');
  new StateDb(file).close(); // made (WAL, schema) before either starts
  const script = path.join(dir, 'saver.mts');
  writeFileSync(script, SAVER.replace('STATE_DB', pathToFileURL(path.resolve('scripts/lib/runs/state-db.ts')).href));
  const results = await Promise.all(['0000000a', '0000000b'].map((id) => saver(script, file, id)));
  expect(results.map((r) => r.stderr.split('\n').find((l) => /Error/.test(l)) ?? null)).toEqual([null, null]);
  expect(results.map((r) => r.code)).toEqual([0, 0]);
  const db = new StateDb(file);
  expect(db.list().map((r) => [r.run_id.slice(-8), r.units[0]!.attempts[0]!.last_step]).sort()).toEqual([
    ['0000000a', SAVES],
    ['0000000b', SAVES],
  ]);
  db.close();
});
