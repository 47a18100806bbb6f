// The agent in tests: started as `make agent` in its own process group, its log kept; runs read
// from the sandbox's file store as the agent records them.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';
import { parseRunJson } from '../../scripts/lib/runs/run-record.js';
import { waitFor, type Sandbox } from './sandbox.js';

export type AgentProcess = ReturnType<Sandbox['spawnMake']>;

/** Starts `make agent` and waits for its first heartbeat. */
export async function startAgent(sb: Sandbox, env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> {
  const p = sb.spawnMake(['agent', 'tick_ms=200'], env);
  await waitFor(() => /agent: pid \d+/.test(p.output()) || p.exitCode !== null, 60_000, 'the agent to start');
  if (p.exitCode !== null) throw new Error(`make agent exited ${p.exitCode}: ${p.output()}`);
  return p;
}

/** The pid of the agent itself (node), which make starts as its child in the group. */
export function agentPid(sb: Sandbox): number {
  return (JSON.parse(readFileSync(path.join(sb.dir, '.switchyard/agent/agent.json'), 'utf8')) as { pid: number }).pid;
}

export async function stopAgent(p: AgentProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const closed = new Promise((r) => p.on('close', r));
  try {
    process.kill(-p.pid!, signal);
  } catch {
    return;
  }
  await closed;
}

/** The run as its record in the sandbox's store says (null before it exists). */
export function storedRun(sb: Sandbox, runId: string): RunRecord | null {
  const file = path.join(sb.dir, '.switchyard/store/runs', runId, 'run.json');
  if (!existsSync(file)) return null;
  try {
    return parseRunJson(readFileSync(file, 'utf8'));
  } catch {
    return null; // being replaced
  }
}

export const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
