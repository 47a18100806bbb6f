// The agent's pure rules: when its lock is stale, how long a retry waits, which ends resume,
// which backends can take a unit, when a run has nothing left to do, and the unit it installs.
import { describe, expect, it } from 'vitest';
import { agentHealth, type AgentInfo } from '../../scripts/lib/agent/agent-lock.js';
import { settledState } from '../../scripts/lib/agent/desired.js';
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
    expect(unit).toContain('ExecStart=/usr/bin/node /home/me/proj/dist/scripts/agent.js');
    expect(unit).toContain('Restart=always');
    expect(unit).toContain('KillMode=process');
  });
});
