// The agent carries runs no shell follows: detach=1 submits and returns, the agent finishes the
// run; an agent stopped (SIGSTOP, a laptop's lid) for longer than a whole attempt finds it ended
// on waking, pulls it and closes the run without running it again; make stop asks the agent.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { desiredRun } from '../../scripts/lib/agent/desired.js';
import { agentHome } from '../../scripts/lib/agent/home.js';
import type { Project } from '../../scripts/lib/project.js';
import { createSandbox, holdExperiment, holdMidRun, waitFor, type Sandbox } from '../helpers/sandbox.js';
import { agentPid, runIdIn, startAgent, stopAgent, storedRun, type AgentProcess } from '../helpers/agent.js';

describe('the agent', () => {
  let sb: Sandbox;

  /** penguins/long: the full experiment, 50 times as many epochs. */
  function writeLong(): void {
    const penguins = path.join(sb.dir, 'competitions/penguins');
    const full = readFileSync(path.join(penguins, 'experiment.yaml'), 'utf8');
    writeFileSync(path.join(penguins, 'experiments/long.yaml'), full.replace('EPOCHS: "8000"', 'EPOCHS: "400000"'));
  }
  let agent: AgentProcess | null = null;

  beforeAll(() => {
    sb = createSandbox();
    expect(sb.make(['build']).code).toBe(0);
  });
  afterAll(async () => {
    if (agent) await stopAgent(agent);
    sb?.cleanup();
  });

  /** What the agent's home says is wanted of the run (its entry and its stop, read as one), and where a stop is kept. */
  const wanted = (id: string) => desiredRun(agentHome({ stateDir: path.join(sb.dir, '.switchyard'), config: { agent: { home: 'local', stale_after_sec: 30 } } } as Project), id);
  const stopFile = (id: string) => path.join(sb.dir, '.switchyard/agent/stops', `${id}.json`);
  const attemptDir = (id: string, n: number) => path.join(sb.dir, '.switchyard/work', id, 'attempts', String(n));
  /** What an attempt's folder and the agent say, for a failure's message. */
  const attemptReport = (id: string, n: number) => {
    const read = (name: string) => (existsSync(path.join(attemptDir(id, n), name)) ? readFileSync(path.join(attemptDir(id, n), name), 'utf8').trim() : '(none)');
    const runner = Number(read('runner.pid').split(' ')[0]);
    return [
      `status.json: ${read('status.json')}`,
      `runner (pid ${runner}): ${runner > 0 && existsSync(`/proc/${runner}`) ? 'alive' : 'gone'}`,
      `runner.log: ${read('runner.log')}`,
      `events.jsonl: ${read('events.jsonl')}`,
      `the agent's log:\n${agent?.output()}`,
    ].join('\n');
  };

  it('make agent-status says when no agent runs', () => {
    const status = sb.make(['agent-status']);
    expect(status.code).not.toBe(0); // agent-status exits 3, which make reports as its own failure
    expect(status.stdout).toContain('agent: not running');
  });

  it('a make train whose shell died (kill -9) is carried on by an agent started later, from its checkpoint', async () => {
    const hold = await holdExperiment(sb);
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'seed=10']);
    const { runId: id } = await holdMidRun(sb, hold, 1);
    await waitFor(() => (storedRun(sb, id)?.units[0]?.attempts[0]?.last_step ?? 0) > 0, 60_000, 'the checkpoint in the stored run');
    process.kill(-p.pid!, 'SIGKILL');
    await new Promise((r) => p.on('close', r));
    agent = await startAgent(sb);
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts.at(-1)?.state === 'succeeded', 90_000, 'the agent to finish the run');
    const attempts = storedRun(sb, id)!.units[0]!.attempts;
    expect(attempts.map((a) => a.state)).toEqual(['lost', 'succeeded']);
    expect(attempts[1]!.restored_step).toBeGreaterThan(0);
  });

  it('detach=1 returns at once; the agent finishes the run, and make status shows it', async () => {
    agent ??= await startAgent(sb);
    const r = sb.make(['train', 'experiment=penguins/fast', 'seed=11', 'detach=1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = runIdIn(r.stdout + r.stderr)!;
    expect(r.stdout + r.stderr).toMatch(/submitted; the agent \(pid \d+\) carries it/);
    // returned before the experiment (~3 s of training) could have finished
    expect(storedRun(sb, id)!.units[0]!.attempts[0]!.state).not.toBe('succeeded');
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts.at(-1)?.state === 'succeeded', 90_000, 'the agent to finish the run');
        const run = storedRun(sb, id)!;
    expect(run.units[0]!.attempts.map((a) => a.state)).toEqual(['succeeded']);
    expect(existsSync(path.join(sb.dir, '.switchyard/store/runs', id, 'outputs/model.json'))).toBe(true);
    const status = sb.make(['status', `run=${id}`]);
    expect(status.stdout).toMatch(/agent: running since .* last tick/);
    const agentStatus = sb.make(['agent-status']);
    expect(agentStatus.code).toBe(0);
    await waitFor(() => sb.make(['agent-status']).stdout.includes('closed: succeeded'), 30_000, 'the run closed');
  });

  it('a stopped agent (SIGSTOP) wakes after the attempt ended, pulls it and closes the run without running it again', async () => {
    const r = sb.make(['train', 'experiment=penguins/fast', 'seed=12', 'detach=1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = runIdIn(r.stdout + r.stderr)!;
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts[0]?.state === 'running', 30_000, 'attempt 1 running');
    const pid = agentPid(sb);
    process.kill(pid, 'SIGSTOP');
    try {
      // the whole attempt ends while the agent sleeps: its runner writes the final status and exits
      const status = path.join(attemptDir(id, 1), 'status.json');
      await waitFor(() => existsSync(status) && JSON.parse(readFileSync(status, 'utf8')).state === 'succeeded', 90_000, 'the attempt to end');
      const runnerPid = Number(readFileSync(path.join(attemptDir(id, 1), 'runner.pid'), 'utf8').split(' ')[0]);
      await waitFor(() => !existsSync(`/proc/${runnerPid}`), 30_000, 'the runner to exit');
      expect(storedRun(sb, id)!.units[0]!.attempts[0]!.state).toBe('running'); // nobody recorded it yet
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The record is saved, then the ledger entry appended: wait for both.
    const ledgerLines = (kind: string) =>
      readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8').split('\n').filter((l) => l.includes(`"${kind}"`) && l.includes(id));
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts.at(-1)?.state === 'succeeded' && ledgerLines('attempt.ended').length > 0, 60_000, 'the agent to record the end');
    const run = storedRun(sb, id)!;
    expect(run.units[0]!.attempts).toHaveLength(1);
    expect(existsSync(path.join(sb.dir, '.switchyard/store/runs', id, 'outputs/model.json'))).toBe(true);
    expect(ledgerLines('attempt.started')).toHaveLength(1);
    expect(ledgerLines('attempt.ended')).toHaveLength(1);
  });

  it('make stop asks the agent, which stops the run and leaves it stopped', async () => {
    writeLong(); // only the stop ends it, however quick the machine
    const r = sb.make(['train', 'experiment=penguins/long', 'seed=13', 'detach=1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = runIdIn(r.stdout + r.stderr)!;
    // Running, and the agent's: a stop before the agent has taken the run is make stop's own.
    const driving = () => sb.make(['agent-status']).stdout.split('\n').some((l) => l.includes(id) && l.includes('driving'));
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts[0]?.state === 'running' && driving(), 30_000, 'the agent driving attempt 1');
    const stop = sb.make(['stop', `run=${id}`]);
    if (stop.code !== 0) await new Promise((r) => setImmediate(r)); // the agent's lines meanwhile, read in
    expect(stop.code, `${stop.stdout}${stop.stderr}\n${stop.code === 0 ? '' : attemptReport(id, 1)}`).toBe(0);
    expect(stop.stdout + stop.stderr).toMatch(/the agent \(pid \d+\): asked its live attempts to checkpoint and stop/);
    expect(storedRun(sb, id)!.units[0]!.attempts.map((a) => a.state)).toEqual(['cancelled']);
    // a few ticks later it is still stopped: the agent does not start it again
    await waitFor(() => sb.make(['agent-status']).stdout.includes('closed: cancelled'), 30_000, 'the run closed as stopped');
    expect(storedRun(sb, id)!.units[0]!.attempts).toHaveLength(1);
  });

  it('a stop the agent took is seen through by the next agent, should it die first (kill -9)', async () => {
    writeLong(); // long enough that only the stop can end it while one agent dies and the next starts
    const r = sb.make(['train', 'experiment=penguins/long', 'seed=14', 'detach=1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = runIdIn(r.stdout + r.stderr)!;
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts[0]?.state === 'running' && sb.make(['agent-status']).stdout.includes('1 run driven'), 30_000, 'the agent driving attempt 1');
    await stopAgent(agent!, 'SIGKILL');
    // What the agent wrote as it took the stop, before it could ask the attempt.
    mkdirSync(path.dirname(stopFile(id)), { recursive: true });
    writeFileSync(stopFile(id), JSON.stringify({ force: false, at: new Date().toISOString() }));
    const runner = Number(readFileSync(path.join(attemptDir(id, 1), 'runner.pid'), 'utf8').split(' ')[0]);
    agent = await startAgent(sb);
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts[0]?.state === 'cancelled', 90_000, `attempt 1 stopped (${agent?.output()})`);
    expect(storedRun(sb, id)!.units[0]!.attempts).toHaveLength(1);
    await waitFor(() => !existsSync(`/proc/${runner}`), 30_000, 'its runner to exit');
    await waitFor(() => JSON.parse(readFileSync(stopFile(id), 'utf8')).carried === true, 30_000, 'the stop seen through');
    expect((await wanted(id))?.closed?.state).toBe('cancelled');
  });

  it('a make stop killed (kill -9) while it follows the attempt leaves the stop to the agent', async () => {
    await stopAgent(agent!);
    agent = null;
    const r = sb.make(['train', 'experiment=penguins', 'seed=15', 'detach=1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = runIdIn(r.stdout + r.stderr)!;
    await waitFor(() => existsSync(path.join(attemptDir(id, 1), 'status.json')), 30_000, 'the runner started');
    const runner = Number(readFileSync(path.join(attemptDir(id, 1), 'runner.pid'), 'utf8').split(' ')[0]);
    process.kill(runner, 'SIGSTOP'); // the attempt cannot end while make stop follows it
    try {
      const stop = sb.spawnMake(['stop', `run=${id}`]);
      await waitFor(() => existsSync(path.join(sb.dir, '.switchyard/launchers', `${id}.pid`)), 30_000, `make stop following the attempt (${stop.output()})`);
      const closed = new Promise((resolve) => stop.on('close', resolve));
      process.kill(-stop.pid!, 'SIGKILL');
      await closed;
      expect(await wanted(id)).toMatchObject({ closed: { state: 'cancelled' }, stop: { force: false } });
    } finally {
      process.kill(runner, 'SIGCONT');
    }
    agent = await startAgent(sb);
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts[0]?.state === 'cancelled', 90_000, `attempt 1 stopped (${agent?.output()})`);
    await waitFor(() => JSON.parse(readFileSync(stopFile(id), 'utf8')).carried === true, 30_000, 'the stop seen through');
    expect(storedRun(sb, id)!.units[0]!.attempts).toHaveLength(1);
  });

  it('make agent-install keeps an agent running (a tmux session where systemd does not run for the user)', async () => {
    if (agent) await stopAgent(agent);
    agent = null;
    const r = sb.make(['agent-install']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const tmux = /tmux session (switchyard-agent-[0-9a-f]{8})/.exec(r.stdout)?.[1];
    const unit = /systemd user unit (\S+) enabled/.exec(r.stdout)?.[1];
    try {
      expect(tmux ?? unit).toBeTruthy();
      await waitFor(() => sb.make(['agent-status']).code === 0, 60_000, 'the installed agent to beat');
      // one agent per state folder: a second one is refused, naming the first
      const second = sb.make(['agent']);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toMatch(/agent: running since .*; one agent per state folder/);
    } finally {
      if (tmux) spawnSync('tmux', ['kill-session', '-t', `=${tmux}`]);
      if (unit) {
        spawnSync('systemctl', ['--user', 'disable', '--now', path.basename(unit)]);
        rmSync(unit, { force: true });
      }
    }
    await waitFor(() => sb.make(['agent-status']).code !== 0, 30_000, 'the installed agent to stop');
  });
});
