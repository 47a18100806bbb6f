// make stop is never undone. (1) The shell that follows a run rewrites the run's entry in the
// agent's home with every heartbeat (follower.ts), and so does an agent taking the run over: a
// stop written between such a read and its write must still stand. (2) A run stopped before its
// units started reads `cancelled` (not `created`) in its record, its summary and the listing.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listRuns } from '../../scripts/lib/actions/look.js';
import { stopWanted } from '../../scripts/lib/actions/stop.js';
import { closeForStop, desiredRun, setFollower, STOPPED, stopCarried, wantRun } from '../../scripts/lib/agent/desired.js';
import { FollowerBeat } from '../../scripts/lib/agent/follower.js';
import { agentHome, type AgentHome } from '../../scripts/lib/agent/home.js';
import type { Config } from '../../scripts/lib/config/load-config.js';
import type { Project } from '../../scripts/lib/project.js';
import { runState, summarize, summaryState, type AttemptRecord, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { loadRun, saveRun } from '../../scripts/lib/runs/run-store.js';
import { StateDb } from '../../scripts/lib/runs/state-db.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { UserError } from '../../scripts/lib/ui/errors.js';

/** An agent home in memory, as a store home is seen from a shell on another machine. */
function memoryHome(): AgentHome {
  const files = new Map<string, string>();
  return {
    kind: 'store',
    location: 'memory://agent/',
    staleMs: 5000,
    read: async (name) => files.get(name) ?? null,
    write: async (name, text) => void files.set(name, text),
    remove: async (name) => void files.delete(name),
    list: async (dir) => [...files.keys()].filter((k) => k.startsWith(`${dir}/`)).map((k) => k.slice(dir.length + 1)).sort(),
  };
}

const stopped = { closed: { state: STOPPED.state, reason: STOPPED.reason }, stop: { force: false } };

describe('a stop and the writes that race it', () => {
  it('stands when make stop writes between the heartbeat read of the run and its renewal', async () => {
    const home = memoryHome();
    const beat = new FollowerBeat(home, 'r', () => {});
    await wantRun(home, { run_id: 'r', backend: 'ssh', follower: beat.follower });
    // The heartbeat's write of the run's entry waits until make stop (another machine) has taken the stop.
    const write = home.write;
    let raced = false;
    home.write = async (name, text) => {
      if (name === 'runs/r.json') {
        home.write = write;
        await closeForStop(home, 'r', false);
        raced = true;
      }
      await write(name, text);
    };
    expect(await beat.stillMine()).toBe(true); // it read an open run, and renewed
    expect(raced).toBe(true);
    expect(await desiredRun(home, 'r')).toMatchObject(stopped);
    expect(await beat.stillMine()).toBe(false); // the next beat sees the stop, and the shell leaves
    expect(beat.takenBy).toBe('another process took it over, and it has ended: cancelled (make stop)');
  });

  it('stands when the agent clears a silent shell from a run it read before the stop', async () => {
    const home = memoryHome();
    await wantRun(home, { run_id: 'r', backend: 'ssh', follower: new FollowerBeat(home, 'r', () => {}).follower });
    const read = (await desiredRun(home, 'r'))!; // the agent, taking the run over
    await closeForStop(home, 'r', true); // make stop, meanwhile
    await setFollower(home, read, undefined);
    expect(await desiredRun(home, 'r')).toMatchObject({ ...stopped, stop: { force: true } });
  });

  it('is owed until carried out, stays closed after, and a new launch of the run opens it again', async () => {
    const home = memoryHome();
    await wantRun(home, { run_id: 'r', backend: 'ssh' });
    await closeForStop(home, 'r', false);
    await stopCarried(home, 'r');
    const carried = (await desiredRun(home, 'r'))!;
    expect(carried.closed).toMatchObject(stopped.closed);
    expect(carried.stop).toBeUndefined();
    await wantRun(home, { run_id: 'r', backend: 'ssh' });
    const reopened = (await desiredRun(home, 'r'))!;
    expect(reopened.closed).toBeUndefined();
    expect(reopened.stop).toBeUndefined();
  });

  it('is read from an entry written before stops were kept apart, and carried out from there', async () => {
    const home = memoryHome();
    const closed = { state: 'cancelled', at: '2026-12-01T12:00:00.000Z', reason: 'make stop' };
    await home.write('runs/r.json', JSON.stringify({ run_id: 'r', backend: 'ssh', since: '2026-12-01T11:00:00.000Z', closed, stop: { force: true } }));
    expect(await desiredRun(home, 'r')).toMatchObject({ closed, stop: { force: true } });
    await stopCarried(home, 'r');
    expect((await desiredRun(home, 'r'))!.stop).toBeUndefined();
  });
});

describe('a run stopped before its units started', () => {
  let dir: string;
  let project: Project;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'stop-kept-'));
    const stateDir = path.join(dir, '.switchyard');
    project = {
      root: dir,
      stateDir,
      config: { agent: { home: 'local', stale_after_sec: 30 } } as Config,
      store: new FileStore('file://store', path.join(dir, 'store')),
      db: new StateDb(path.join(stateDir, 'state.db')),
      ledgerPath: path.join(stateDir, 'ledger.jsonl'),
      workDir: (unit) => path.join(stateDir, 'work', unit),
    };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cancelled = (n: number): AttemptRecord => ({
    n,
    backend: 'fleet',
    handle: { backend: 'fleet', host: 'gpu-1', session: 's' },
    state: 'cancelled',
    reason: 'make stop',
    exit_code: null,
    started_at: '2026-12-01T12:00:00.000Z',
    ended_at: '2026-12-01T12:01:00.000Z',
    restored_step: null,
    last_step: null,
    events_seen: 0,
  });
  const runOf = (id: string, units: AttemptRecord[][]): RunRecord => ({
    run_id: `knn-default-20261201T${id}-0badf00d`,
    experiment: 'knn',
    created_at: '2026-12-01T12:00:00.000Z',
    pins: { code: { commit: 'c', dirty_sha256: null }, data: { root: 'r', files: 1, bytes: 1 }, env: { lock_sha256: 'l', python: null, node: 'v20' }, config: 'x', seed: 0, digest: `d${id}` },
    spec: {} as RunRecord['spec'],
    command: { train: 'true', predict: null },
    backends: ['fleet'],
    replay_of: null,
    units: units.map((attempts, index) => ({ index, attempts, moved_from: [] })),
    sharded: units.length > 1,
  });

  /** make stop of the run, which nothing follows and none of whose units runs: refused as not running, and closed. */
  async function stop(run: RunRecord): Promise<RunRecord> {
    await saveRun(project, run);
    await wantRun(agentHome(project), { run_id: run.run_id, backend: 'fleet' });
    await expect(stopWanted(project, run)).rejects.toThrow(UserError);
    return loadRun(project, run.run_id, { fresh: true });
  }

  it('reads cancelled when none of its units was ever given an attempt', async () => {
    const run = await stop(runOf('1200', []));
    expect(runState(run)).toBe('cancelled');
    expect(summaryState(summarize(run))).toBe('cancelled');
    expect((await listRuns(project)).map((r) => r.state)).toEqual(['cancelled']);
    expect((await desiredRun(agentHome(project), run.run_id))?.closed).toMatchObject(stopped.closed);
  });

  it('reads cancelled when its shards that had not started are cut off by the stop', async () => {
    const run = await stop(runOf('1300', [[cancelled(1)], [], []]));
    expect(run.units.map((u) => u.attempts.length)).toEqual([1, 0, 0]); // nothing made up: they never ran
    expect(runState(run)).toBe('cancelled');
    expect(summarize(run).states).toEqual({ cancelled: 3 });
    expect((await listRuns(project)).map((r) => r.state)).toEqual(['cancelled']);
  });

  it('reads created while nothing stopped it', () => {
    const run = runOf('1400', [[cancelled(1)], []]);
    expect(runState(run)).toBe('created');
    expect(summaryState(summarize(runOf('1500', [])))).toBe('created');
  });
});
