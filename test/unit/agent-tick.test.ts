// The agent's loop when its home does not answer for a while (a store's 503, a network blip):
// the ticks that fail are said once and tried again; the agent goes on, and beats once they pass.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { readAgent } from '../../scripts/lib/agent/agent-lock.js';
import { Agent } from '../../scripts/lib/agent/agent.js';
import { agentHome } from '../../scripts/lib/agent/home.js';
import { pendingRequests } from '../../scripts/lib/agent/requests.js';
import type { Project } from '../../scripts/lib/project.js';
import { waitFor } from '../helpers/sandbox.js';

vi.mock('../../scripts/lib/agent/requests.js', async (actual) => ({ ...(await actual<object>()), pendingRequests: vi.fn() }));

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

it('a tick that fails is said once and tried again: the agent goes on, and beats once the home answers', async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'agent-tick-'));
  const project = { root: dir, stateDir: path.join(dir, '.switchyard'), config: { agent: { home: 'local', stale_after_sec: 30 } } } as unknown as Project;
  const unavailable = Object.assign(new Error('the store answered 503: SlowDown\n    at S3Store.read'), { name: 'ServiceUnavailable' });
  const asked = vi.mocked(pendingRequests);
  asked.mockRejectedValueOnce(unavailable).mockRejectedValueOnce(unavailable).mockRejectedValueOnce(unavailable).mockResolvedValue([]);
  const said: string[] = [];
  const agent = new Agent(project, { say: (l) => said.push(l), tickMs: 50 });
  const running = agent.run();
  try {
    await waitFor(() => said.includes('agent: ticks go through again'), 30_000, () => `a tick to go through once the home answers: ${said.join(' | ')}`);
    expect(asked.mock.calls.length).toBeGreaterThanOrEqual(4);
    const beat = await readAgent(agentHome(project));
    expect(beat).toMatchObject({ pid: process.pid });
    expect(beat!.ticks).toBeGreaterThanOrEqual(1);
    expect(said.slice(1)).toEqual(['agent: a tick failed (the store answered 503: SlowDown); trying again each tick', 'agent: ticks go through again']);
  } finally {
    agent.stop();
    await running;
  }
});

it('a home that does not answer as the agent stops: said in one line, and the agent still ends', async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'agent-tick-'));
  const project = { root: dir, stateDir: path.join(dir, '.switchyard'), config: { agent: { home: 'local', stale_after_sec: 30 } } } as unknown as Project;
  vi.mocked(pendingRequests).mockReset().mockResolvedValue([]);
  const said: string[] = [];
  const agent = new Agent(project, { say: (l) => said.push(l), tickMs: 50 });
  const running = agent.run();
  await waitFor(() => vi.mocked(pendingRequests).mock.calls.length > 0, 30_000, 'a first tick');
  const home = (agent as unknown as { home: { remove: (name: string) => Promise<void> } }).home;
  home.remove = () => Promise.reject(new Error('the store answered 503: SlowDown\n    at S3Store.delete'));
  agent.stop();
  await expect(running).resolves.toBeUndefined();
  expect(said.at(-1)).toBe(`agent: could not give up ${path.join(dir, '.switchyard', 'agent')} (the store answered 503: SlowDown); the next agent takes it over once this one's heartbeat is 30s old`);
});
