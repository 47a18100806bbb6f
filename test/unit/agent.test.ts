// The agent's pure rules: when its lock is stale, how long a retry waits, which ends resume,
// which backends can take a unit, when a run has nothing left to do, the unit it installs, and
// how a foreground shell tells an agent elsewhere that it follows a run.
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentLock, agentHealth, readAgent, type AgentInfo } from '../../scripts/lib/agent/agent-lock.js';
import { closeRun, desiredRun, followerLive, setFollower, settledState, wantRun } from '../../scripts/lib/agent/desired.js';
import { FollowerBeat, thisShell } from '../../scripts/lib/agent/follower.js';
import { agentHome, type AgentHome } from '../../scripts/lib/agent/home.js';
import { systemdUnit } from '../../scripts/lib/agent/install.js';
import { endsInARow, fitsResources, resumes, retryDelayMs } from '../../scripts/lib/runs/failover.js';
import type { AttemptRecord, RunRecord } from '../../scripts/lib/runs/run-record.js';

const info = (beat: string): AgentInfo => ({ pid: 42, pid_start: '1', host: 'h', started_at: '2026-01-01T00:00:00.000Z', heartbeat_at: beat, ticks: 3, runs: [] });
const attempt = (n: number, state: AttemptRecord['state'], last_step: number | null = 5): AttemptRecord => ({
  n,
  backend: 'local',
  handle: null,
  state,
  reason: state === 'succeeded' ? null : `why ${n}`,
  exit_code: null,
  started_at: '2026-01-01T00:00:00.000Z',
  ended_at: null,
  restored_step: null,
  last_step,
  events_seen: 0,
});
const runOf = (units: AttemptRecord[][], spec: Partial<RunRecord['spec']> = {}): RunRecord =>
  ({ run_id: 'r', units: units.map((attempts, index) => ({ index, attempts, moved_from: [] })), spec: { resources: { gpus: 0, spot: false }, ...spec } }) as unknown as RunRecord;

describe('agent lock', () => {
  const now = Date.parse('2026-01-01T00:01:00.000Z');
  it('is free when nobody holds it or its holder is gone', () => {
    expect(agentHealth(null, null, now, 30_000).state).toBe('stopped');
    expect(agentHealth(info('2026-01-01T00:00:59.000Z'), false, now, 30_000).state).toBe('stopped');
  });
  it('is held while its holder beats, and stale once it has been silent past the stale time', () => {
    expect(agentHealth(info('2026-01-01T00:00:59.000Z'), true, now, 30_000).state).toBe('running');
    expect(agentHealth(info('2026-01-01T00:00:20.000Z'), true, now, 30_000)).toMatchObject({ state: 'stale', silentMs: 40_000 });
    // a holder on another host cannot be asked: its heartbeat alone says
    expect(agentHealth(info('2026-01-01T00:00:20.000Z'), null, now, 30_000).state).toBe('stale');
    expect(agentHealth(info('2026-01-01T00:00:50.000Z'), null, now, 30_000).state).toBe('running');
  });
  it('is taken in a state folder no run has written to yet, and given back', async () => {
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'agent-lock-')), '.switchyard');
    try {
      const home = agentHome({ stateDir, config: { agent: { home: 'local', stale_after_sec: 30 } } } as Parameters<typeof agentHome>[0]);
      const lock = await AgentLock.take(home, () => {});
      expect(await readAgent(home)).toMatchObject({ pid: process.pid, host: os.hostname() });
      await lock.release();
      expect(await readAgent(home)).toBeNull();
    } finally {
      rmSync(path.dirname(stateDir), { recursive: true, force: true });
    }
  });
  it('beats only while the file names it: an agent taken over while it was stopped mid-tick leaves the home to the newer one', async () => {
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'agent-lock-')), '.switchyard');
    try {
      const home = agentHome({ stateDir, config: { agent: { home: 'local', stale_after_sec: 30 } } } as Parameters<typeof agentHome>[0]);
      const lock = await AgentLock.take(home, () => {});
      expect(await lock.beat(['r1'])).toBe(true);
      expect(await readAgent(home)).toMatchObject({ pid: process.pid, ticks: 1, runs: ['r1'] });
      const newer = { ...info(new Date().toISOString()), host: 'elsewhere' };
      await home.write('agent.json', JSON.stringify(newer) + '\n', { durable: false });
      expect(await lock.beat(['r1'])).toBe(false);
      expect(await readAgent(home)).toEqual(newer);
      await lock.release();
      expect(await readAgent(home)).toEqual(newer);
    } finally {
      rmSync(path.dirname(stateDir), { recursive: true, force: true });
    }
  });
});

describe('failover rules', () => {
  it('retries at once, then backs off exponentially up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5].map((k) => retryDelayMs(k, 2000, 10_000))).toEqual([0, 0, 2000, 4000, 8000, 10_000]);
  });
  it('counts the ends without progress in a row, back to a new checkpoint, a success or a stop', () => {
    expect(endsInARow([attempt(1, 'succeeded'), attempt(2, 'preempted', null), attempt(3, 'lost', null)])).toBe(2);
    expect(endsInARow([attempt(1, 'preempted', null), attempt(2, 'cancelled', null), attempt(3, 'timeout', null), attempt(4, 'queued', null)])).toBe(1);
    // attempt 2 committed step 5 (it restored none): the count starts after it
    expect(endsInARow([attempt(1, 'lost', null), attempt(2, 'preempted', 5), { ...attempt(3, 'lost', 5), restored_step: 5 }, attempt(4, 'lost', null)])).toBe(2);
  });
  it('resumes preemptions, lost workers and timeouts with a checkpoint; failures only within retry_on_error', () => {
    const spec = { retry_on_error: 1 };
    expect(resumes(attempt(1, 'preempted'), [], {})).toBe(true);
    expect(resumes(attempt(1, 'lost', null), [], {})).toBe(true);
    expect(resumes(attempt(1, 'timeout', 3), [], {})).toBe(true);
    expect(resumes(attempt(1, 'timeout', null), [], {})).toBe(false);
    expect(resumes(attempt(1, 'cancelled'), [], spec)).toBe(false);
    const one = [attempt(1, 'failed')];
    expect(resumes(one[0]!, one, {})).toBe(false);
    expect(resumes(one[0]!, one, spec)).toBe(true);
    const two = [attempt(1, 'failed'), attempt(2, 'preempted'), attempt(3, 'failed')];
    expect(resumes(two[2]!, two, spec)).toBe(false);
    expect(resumes(two[2]!, two, { retry_on_error: 2 })).toBe(true);
  });
  it('takes a backend only when it has the GPUs and the spot capacity asked', () => {
    const have = { gpus: 1, spot: false, shards: false };
    expect(fitsResources({ resources: { gpus: 1, spot: false } }, have)).toBe(true);
    expect(fitsResources({ resources: { gpus: 2, spot: false } }, have)).toBe(false);
    expect(fitsResources({ resources: { gpus: 0, spot: true } }, have)).toBe(false);
    expect(fitsResources({}, have)).toBe(true);
  });
});

describe('a run with nothing left to do', () => {
  it('is done when every unit succeeded, or its last end does not resume', () => {
    expect(settledState(runOf([[attempt(1, 'succeeded')]])).done).toBe(true);
    expect(settledState(runOf([[attempt(1, 'preempted')]])).done).toBe(false);
    expect(settledState(runOf([[attempt(1, 'running')]])).done).toBe(false);
    expect(settledState(runOf([[attempt(1, 'queued')]])).done).toBe(false);
    expect(settledState(runOf([[attempt(1, 'cancelled')]]))).toMatchObject({ done: true, state: 'cancelled', reason: 'why 1' });
    expect(settledState(runOf([[attempt(1, 'failed')]])).done).toBe(true);
    expect(settledState(runOf([[attempt(1, 'failed')]], { retry_on_error: 1 })).done).toBe(false);
    expect(settledState(runOf([[attempt(1, 'succeeded')], [attempt(1, 'lost')]])).done).toBe(false);
    expect(settledState(runOf([])).done).toBe(false);
  });
});

describe('agent-install', () => {
  it('writes a unit that runs the agent in the project and leaves runners alive on a restart', () => {
    const unit = systemdUnit('/home/me/proj', '/usr/bin/node');
    expect(unit).toContain('WorkingDirectory=/home/me/proj');
    expect(unit).toContain('ExecStart="/usr/bin/node" "/home/me/proj/dist/scripts/agent.js"');
    expect(unit).toContain('Restart=always');
    expect(unit).toContain('KillMode=process');
  });

  it('escapes what systemd would read in a project path: spaces, specifiers, variables, quotes', () => {
    const unit = systemdUnit('/home/me/my proj %h $HOME "q"', '/usr/bin/node');
    expect(unit).toContain('WorkingDirectory=/home/me/my proj %%h $HOME "q"');
    expect(unit).toContain('ExecStart="/usr/bin/node" "/home/me/my proj %%h $$HOME \\"q\\"/dist/scripts/agent.js"');
    expect(unit).toContain('Description=Switchyard agent for /home/me/my proj %%h');
  });

  it('refuses a project path with a line break in one line', () => {
    expect(() => systemdUnit('/home/me/a\nb', '/usr/bin/node')).toThrow(/line break.*move the project/);
  });
});

/** An agent home in memory: what a store or a folder holds, without either. */
function memoryHome(staleMs = 5000): AgentHome & { files: Map<string, string> } {
  const files = new Map<string, string>();
  return {
    kind: 'store',
    location: 'memory://agent/',
    staleMs,
    files,
    read: async (name) => files.get(name) ?? null,
    write: async (name, text) => void files.set(name, text),
    remove: async (name) => void files.delete(name),
    list: async (dir) => [...files.keys()].filter((k) => k.startsWith(`${dir}/`)).map((k) => k.slice(dir.length + 1)).sort(),
  };
}

describe('a foreground shell followed from another machine', () => {
  const shell = (host: string, beat: string) => ({ host, pid: 1, pid_start: null, beat_at: beat });
  const now = Date.parse('2026-01-01T00:01:00.000Z');

  it('counts as following while its heartbeat is fresh (another host) or its pid lives (this host)', () => {
    expect(followerLive(undefined, 5000, now)).toBe(false);
    expect(followerLive(shell('laptop-elsewhere', '2026-01-01T00:00:57.000Z'), 5000, now)).toBe(true);
    expect(followerLive(shell('laptop-elsewhere', '2026-01-01T00:00:54.000Z'), 5000, now)).toBe(false);
    expect(followerLive({ ...thisShell(), beat_at: '2000-01-01T00:00:00.000Z' }, 5000, now)).toBe(true); // alive here, however old its beat
    expect(followerLive({ ...thisShell(), pid: 2 ** 22 + 7 }, 5000, now)).toBe(false);
  });

  it('renews its heartbeat while the record names it, and leaves once the agent has cleared its name', async () => {
    const home = memoryHome();
    let takenOver = 0;
    const beat = new FollowerBeat(home, 'r1', () => takenOver++);
    await wantRun(home, { run_id: 'r1', backend: 'ssh', follower: beat.follower });
    const first = (await desiredRun(home, 'r1'))!.follower!.beat_at;
    await new Promise((r) => setTimeout(r, 5));
    expect(await beat.stillMine()).toBe(true);
    expect(Date.parse((await desiredRun(home, 'r1'))!.follower!.beat_at)).toBeGreaterThan(Date.parse(first));

    await setFollower(home, (await desiredRun(home, 'r1'))!, undefined); // the agent takes it over
    expect(await beat.stillMine()).toBe(false);
    expect(await beat.stillMine()).toBe(false);
    expect(takenOver).toBe(1);
    expect(beat.takenBy).toBe('the agent took it over; it carries it now');
    await beat.stop();
    expect((await desiredRun(home, 'r1'))!.follower).toBeUndefined(); // its stop writes nothing back
  });

  it('reads the record again before renewing when it was stopped while reading it, and leaves a run taken over meanwhile', async () => {
    const home = memoryHome();
    const beat = new FollowerBeat(home, 'r3', () => {});
    await wantRun(home, { run_id: 'r3', backend: 'ssh', follower: beat.follower });
    const read = home.read;
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      home.read = async (name) => {
        const text = await read(name);
        home.read = read;
        // The shell stops with the read in flight; the agent takes the run over meanwhile.
        await setFollower(home, (await desiredRun(home, 'r3'))!, undefined);
        vi.setSystemTime(Date.now() + 60_000);
        return text;
      };
      expect(await beat.stillMine()).toBe(false);
    } finally {
      vi.useRealTimers();
    }
    expect(beat.takenBy).toBe('the agent took it over; it carries it now');
    expect((await desiredRun(home, 'r3'))!.follower).toBeUndefined();
  });

  it('takes its name off an open run when it stops, and says how a run closed meanwhile ended', async () => {
    const home = memoryHome();
    const beat = new FollowerBeat(home, 'r2', () => {});
    await wantRun(home, { run_id: 'r2', backend: 'ssh', follower: beat.follower });
    await beat.stop();
    expect((await desiredRun(home, 'r2'))!.follower).toBeUndefined();

    const other = new FollowerBeat(home, 'r2', () => {});
    await setFollower(home, (await desiredRun(home, 'r2'))!, other.follower);
    await closeRun(home, 'r2', 'succeeded', null);
    expect(await other.stillMine()).toBe(false);
    expect(other.takenBy).toBe('another process took it over, and it has ended: succeeded');
  });
});
