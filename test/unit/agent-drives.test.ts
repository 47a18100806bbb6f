// The agent around its drives: the launch itself (actions/launch.ts) and the backend are
// stand-ins, so a drive can fail as a fleet whose hosts all refuse makes it fail, or wait as one
// that follows its units does; the agent's own loop, inbox, lock and home (a state folder) are real.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { drive, type DriveOptions } from '../../scripts/lib/actions/launch.js';
import { Agent } from '../../scripts/lib/agent/agent.js';
import { desiredRun, wantRun } from '../../scripts/lib/agent/desired.js';
import { agentHome } from '../../scripts/lib/agent/home.js';
import { askAgent, pendingRequests } from '../../scripts/lib/agent/requests.js';
import type { Backend } from '../../scripts/lib/backends/backend.js';
import type { Project } from '../../scripts/lib/project.js';
import type { AttemptRecord, RunRecord } from '../../scripts/lib/runs/run-record.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { demoRun } from '../helpers/fake-backend.js';
import { waitFor } from '../helpers/sandbox.js';

vi.mock('../../scripts/lib/actions/launch.js', async (actual) => ({ ...(await actual<object>()), drive: vi.fn() }));
vi.mock('../../scripts/lib/backends/index.js', async (actual) => ({
  ...(await actual<object>()),
  checkResources: () => {},
  openBackend: async () => ({ name: 'fleet', title: 'fleet f', slots: () => [{ name: 'h1', capacity: 1 }, { name: 'h2', capacity: 1 }], reachable: async () => true }) as unknown as Backend,
}));
// Passed through; a test holds one call to stand for an agent stopped mid-tick.
vi.mock('../../scripts/lib/agent/requests.js', async (actual) => {
  const real = await actual<typeof import('../../scripts/lib/agent/requests.js')>();
  return { ...real, pendingRequests: vi.fn(real.pendingRequests) };
});
vi.mock('../../scripts/lib/runs/run-store.js', async (actual) => ({ ...(await actual<object>()), loadRun: async () => record }));

const ended = (n: number, state: AttemptRecord['state'], host: string): AttemptRecord => ({
  n,
  backend: 'fleet',
  handle: { backend: 'fleet', host, fleet: 'f' },
  slot: host,
  state,
  reason: state === 'failed' ? 'exit 1' : null,
  exit_code: state === 'failed' ? 1 : 0,
  started_at: '2026-11-30T12:00:00.000Z',
  ended_at: '2026-11-30T12:10:00.000Z',
  restored_step: null,
  last_step: 3,
  events_seen: 0,
});

/** A fleet search of two shards: shard 0 succeeded, shard 1 ended on h1 as `state`. */
function fleetSearch(state: AttemptRecord['state']): RunRecord {
  const run = { ...demoRun(2), fleet: 'f' };
  run.units[0]!.attempts.push(ended(1, 'succeeded', 'h2'));
  run.units[1]!.attempts.push(ended(1, state, 'h1'));
  return run;
}

/** The run as the store holds it (what loadRun returns). */
let record: RunRecord;
let dir: string;
let project: Project;
let agent: Agent | null = null;
let running: Promise<void> | null = null;
/** ends a drive that waits (as one following its units does), so the agent can leave */
let leaveDrive = () => {};
const said: string[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'agent-drives-'));
  project = { root: dir, stateDir: path.join(dir, '.switchyard'), config: { agent: { home: 'local', stale_after_sec: 30 } } } as unknown as Project;
  said.length = 0;
  vi.mocked(drive).mockReset();
});
afterEach(async () => {
  agent?.stop();
  leaveDrive();
  await running;
  rmSync(dir, { recursive: true, force: true });
});

describe('make retry while the agent runs', () => {
  it('a retry whose drive fails (no host could be prepared) is tried again, not closed as the failure it was asked to retry', async () => {
    const run = (record = fleetSearch('failed'));
    const home = agentHome(project);
    const drives = vi.mocked(drive);
    drives.mockRejectedValueOnce(new UserError('fleet f: no host could be prepared (h2: connection refused)'));
    // The second drive records the retry's attempt (it fails too) and leaves the run (detached).
    drives.mockImplementation(async () => {
      run.units[1]!.attempts.push({ ...ended(2, 'failed', 'h2'), started_at: new Date().toISOString() });
      return { kind: 'driven', run, state: 'failed', detached: true, stranded: [], merge: null };
    });
    agent = new Agent(project, { say: (line) => said.push(line), tickMs: 20 });
    running = agent.run();

    const answer = await askAgent(home, { verb: 'retry', run_id: run.run_id, units: [1], host: 'h2' }, 'the agent');
    expect(answer).toBe('the agent starts unit 1');
    const entry = path.join(project.stateDir, 'agent/runs', `${run.run_id}.json`);
    const closed = () => existsSync(entry) && 'closed' in JSON.parse(readFileSync(entry, 'utf8'));
    await waitFor(() => drives.mock.calls.length >= 2 || closed(), 30_000, () => `a second drive (the agent said:\n${said.join('\n')})`);
    expect(said.join('\n')).toContain('no host could be prepared');
    expect(drives.mock.calls.map(([, , , opts]) => [opts.how, opts.only, opts.slot])).toEqual([
      ['retry', [1], 'h2'],
      ['retry', [1], 'h2'],
    ]);
    // Its unit has an attempt since: the retry was carried out once, and the run closes as that attempt ended.
    await waitFor(closed, 30_000, () => `the run closed (the agent said:\n${said.join('\n')})`);
    expect(await desiredRun(home, run.run_id)).toMatchObject({ closed: { state: 'failed' } });
    expect((await desiredRun(home, run.run_id))?.only).toBeUndefined();
    expect(drives).toHaveBeenCalledTimes(2);
  });
});

describe('an agent taken over while it was stopped', () => {
  it('tells its drives the run is no longer theirs, so a supervisor that wakes saves nothing over the new agent', async () => {
    const run = (record = fleetSearch('preempted'));
    const home = agentHome(project);
    let asked: DriveOptions | null = null;
    vi.mocked(drive).mockImplementation((_ctx, _run, _backend, opts) => {
      asked = opts;
      return new Promise((resolve) => (leaveDrive = () => resolve({ kind: 'driven', run, state: 'running', detached: true, stranded: [], merge: null })));
    });
    await wantRun(home, { run_id: run.run_id, backend: 'fleet', fleet: 'f' });
    agent = new Agent(project, { say: (line) => said.push(line), tickMs: 20 });
    running = agent.run();
    await waitFor(() => asked !== null, 30_000, () => `the agent to drive the run (it said:\n${said.join('\n')})`);
    const stillOwner = asked!.stillOwner;
    expect(stillOwner, 'the drive is never asked whether it still owns the run').toBeTypeOf('function');
    expect(await stillOwner!()).toBe(true);

    // Stopped mid-tick (held in its inbox read) past the stale time, it was taken over by
    // another agent, which beats now.
    let stopped = false;
    let wake = () => {};
    const real = vi.mocked(pendingRequests).getMockImplementation()!;
    vi.mocked(pendingRequests).mockImplementationOnce(async (h) => {
      stopped = true;
      await new Promise<void>((resolve) => (wake = resolve));
      return real(h);
    });
    await waitFor(() => stopped, 30_000, 'the agent to stop mid-tick');
    const beat = new Date().toISOString();
    const newer = { pid: 1, pid_start: null, host: 'always-on', started_at: beat, heartbeat_at: beat, ticks: 0, runs: [run.run_id] };
    await home.write('agent.json', JSON.stringify(newer) + '\n');
    expect(await stillOwner!()).toBe(false);
    // It wakes: the rest of its tick, heartbeat included, leaves the home to the newer agent.
    wake();
    await waitFor(() => said.some((l) => l.includes('another agent took over')), 30_000, () => `the agent to leave (it said:\n${said.join('\n')})`);
    leaveDrive(); // the supervisor it detached returns
    await running;
    expect(JSON.parse(readFileSync(path.join(home.location, 'agent.json'), 'utf8'))).toEqual(newer);
  });
});
