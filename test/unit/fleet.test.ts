// Fleet pieces that need no host: the config's fleets, the shard placement, a sharded run's
// state, and the names a shard's attempts get.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../scripts/lib/config/load-config.js';
import { attemptSession, hostLayout } from '../../scripts/lib/remote/host-layout.js';
import { parseRunJson, runJson, runState, shardUnit, type AttemptRecord, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { REPO } from '../helpers/sandbox.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'fleet-config-'));
  mkdirSync(path.join(root, 'scripts/lib/config'), { recursive: true });
  cpSync(path.join(REPO, 'scripts/lib/config/define-config.ts'), path.join(root, 'scripts/lib/config/define-config.ts'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function config(body: string) {
  writeFileSync(
    path.join(root, 'cluster_fleet_config.ts'),
    `import { defineConfig } from './scripts/lib/config/define-config.js';\nexport default defineConfig({\n  hosts: { a: { host: 'a.lan' }, b: { host: 'b.lan' }, c: { host: 'c.lan' } },\n${body}\n});\n`,
  );
  return loadConfig(root);
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message.split('\n')).toHaveLength(1);
  return (err as Error).message;
}

describe('fleets in cluster_fleet_config.ts', () => {
  it('a host list is a fleet with every default; the long form sets them', async () => {
    const c = await config(`  fleets: { lab: ['a', 'b'], night: { hosts: ['c', 'a'], per_host: 2, root: 'sy-night', output_dir: '/data/results', requeue: false, lost_after_sec: 5, sync_excludes: ['*.ckpt'] } },`);
    expect(c.fleets.lab).toEqual({ hosts: ['a', 'b'], per_host: 1, session_prefix: 'sy', sync_excludes: [], sync_parallel: 8, requeue: true, lost_after_sec: 30 });
    expect(c.fleets.night).toMatchObject({ hosts: ['c', 'a'], per_host: 2, root: 'sy-night', output_dir: '/data/results', requeue: false, lost_after_sec: 5, sync_excludes: ['*.ckpt'] });
  });

  it('names the fleet and the fix for an unknown host or a bad setting', async () => {
    expect(await errorOf(config(`  fleets: { lab: ['a', 'z'] },`))).toBe('cluster_fleet_config.ts: fleets.lab: unknown host "z"; add it under hosts');
    expect(await errorOf(config(`  fleets: { lab: { hosts: ['a'], per_host: 0 } },`))).toMatch(/^cluster_fleet_config\.ts: fleets\.lab/);
    expect(await errorOf(config(`  fleets: { lab: { hosts: ['a'], sesion_prefix: 'x' } },`))).toMatch(/^cluster_fleet_config\.ts: fleets\.lab.*sesion_prefix/);
    // remote paths follow the one rule every remote path does: no shell-special characters, no ~, no ..
    expect(await errorOf(config(`  fleets: { lab: { hosts: ['a'], output_dir: '~/out' } },`))).toMatch(/^cluster_fleet_config\.ts: fleets\.lab\.output_dir: .*"~" is not expanded/);
    expect(await errorOf(config(`  fleets: { lab: { hosts: ['a'], root: 'a b' } },`))).toMatch(/^cluster_fleet_config\.ts: fleets\.lab\.root: .*is not allowed/);
  });
});

describe('shard names', () => {
  it('a shard has its own store folder, scratch folder and tmux session', () => {
    const unit = shardUnit('knn-fleet-20261126T0612-bae14715', 4);
    expect(unit).toBe('knn-fleet-20261126T0612-bae14715/shards/4');
    expect(hostLayout('switchyard').work(unit)).toBe('switchyard/scratch/knn-fleet-20261126T0612-bae14715/shards/4');
    expect(attemptSession(unit, 2)).toBe('sy-knn-fleet-20261126T0612-bae14715-s4-2');
    expect(attemptSession(unit, 1, 'night')).toBe('night-knn-fleet-20261126T0612-bae14715-s4-1');
    expect(attemptSession('penguins-default-20261126T0612-bae14715', 1)).toBe('sy-penguins-default-20261126T0612-bae14715-1');
  });
});

describe('the state of a sharded run', () => {
  const attempt = (state: AttemptRecord['state']): AttemptRecord => ({
    n: 1, backend: 'fleet', handle: null, state, reason: null, exit_code: null,
    started_at: '', ended_at: null, restored_step: null, last_step: null, events_seen: 0,
  });
  const run = (...states: (AttemptRecord['state'] | null)[]) =>
    ({ sharded: true, units: states.map((s, index) => ({ index, moved_from: [], attempts: s ? [attempt(s)] : [] })) }) as unknown as RunRecord;

  it('is running while any shard runs, succeeded only when all did, else its worst ending', () => {
    expect(runState(run('succeeded', 'running', 'failed'))).toBe('running');
    expect(runState(run('succeeded', 'succeeded'))).toBe('succeeded');
    expect(runState(run('succeeded', 'failed', 'lost'))).toBe('failed');
    expect(runState(run('succeeded', 'cancelled'))).toBe('cancelled');
    expect(runState(run('succeeded', null))).toBe('created');
  });
});

describe('run.json', () => {
  const base = { run_id: 'r-20261126T0000-00000000', experiment: 'r', created_at: '', pins: {}, spec: {}, command: { train: 'true', predict: null }, backends: ['local'], replay_of: null };
  const attempt = { n: 1, backend: 'local', handle: null, state: 'succeeded', reason: null, exit_code: 0, started_at: '', ended_at: null, restored_step: null, last_step: 3, events_seen: 0 };

  it('keeps the format every released version wrote: a run of one unit has its attempts at the top, a sharded one its shards', () => {
    const single = parseRunJson(JSON.stringify({ ...base, attempts: [attempt] }));
    expect(single).toMatchObject({ sharded: false, units: [{ index: 0, attempts: [attempt], moved_from: [] }] });
    expect(JSON.parse(runJson(single))).toEqual({ ...base, attempts: [attempt] });
    const search = parseRunJson(JSON.stringify({ ...base, attempts: [], shards: [{ index: 0, attempts: [attempt], moved_from: ['h2'] }], fleet: 'lab' }));
    expect(search).toMatchObject({ sharded: true, fleet: 'lab', units: [{ index: 0, moved_from: ['h2'] }] });
    expect(JSON.parse(runJson(search))).toEqual({ ...base, attempts: [], shards: [{ index: 0, attempts: [attempt], moved_from: ['h2'] }], fleet: 'lab' });
    // A run never launched has no units yet: the first launch decides how many.
    expect(parseRunJson(JSON.stringify({ ...base, attempts: [] }))).toMatchObject({ units: [], sharded: false });
  });
});
