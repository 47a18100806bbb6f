// One agent per state folder: `.switchyard/agent/agent.json` holds the pid (with its start
// time, against pid reuse), the host, when it started and its heartbeat, rewritten every tick.
// A holder that is gone, or alive but silent past the stale time (stopped, hung, a laptop that
// slept), is taken over with a message; the silent one, should it wake, finds the file no longer
// names it and leaves the runs to the new holder. `make agent-status`, `make status` and the
// dashboard read the same file.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { withFileLock } from '../ledger/file-lock.js';
import { isAlive, processStartTime } from '../process-alive.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import { formatDuration } from '../ui/format.js';

export interface AgentInfo {
  pid: number;
  pid_start: string | null;
  host: string;
  started_at: string;
  heartbeat_at: string;
  ticks: number;
  /** the runs it drives now */
  runs: string[];
}

/** How long a live holder may miss its heartbeat before another agent takes over. */
export const AGENT_STALE_MS = 30_000;

export const agentDir = (stateDir: string) => path.join(stateDir, 'agent');
const agentFile = (stateDir: string) => path.join(agentDir(stateDir), 'agent.json');

export type AgentHealth =
  | { state: 'running'; info: AgentInfo }
  /** alive (or on another host) but its heartbeat is older than the stale time */
  | { state: 'stale'; info: AgentInfo; silentMs: number }
  | { state: 'stopped'; info: AgentInfo | null };

/** What a lock file says of its holder, given whether its pid lives (null: another host, cannot tell). */
export function agentHealth(info: AgentInfo | null, alive: boolean | null, now: number, staleMs = AGENT_STALE_MS): AgentHealth {
  if (!info || alive === false) return { state: 'stopped', info };
  const silentMs = now - Date.parse(info.heartbeat_at);
  return silentMs > staleMs ? { state: 'stale', info, silentMs } : { state: 'running', info };
}

export function readAgent(stateDir: string): AgentInfo | null {
  try {
    return JSON.parse(readFileSync(agentFile(stateDir), 'utf8')) as AgentInfo;
  } catch {
    return null;
  }
}

/** The agent of this state folder as it stands now. */
export function lookAtAgent(stateDir: string, now = Date.now()): AgentHealth {
  const info = readAgent(stateDir);
  return agentHealth(info, info && (info.host === hostname() ? isAlive(info.pid, info.pid_start) : null), now);
}

/** One line for make status and make agent-status. */
export function describeAgent(h: AgentHealth, now = Date.now()): string {
  if (h.state === 'stopped') return 'agent: not running (make agent starts it, make agent-install keeps it running)';
  const { info } = h;
  const since = `${info.started_at.slice(0, 19).replace('T', ' ')} UTC`;
  const beat = formatDuration(now - Date.parse(info.heartbeat_at));
  const who = `pid ${info.pid}${info.host === hostname() ? '' : ` on ${info.host}`}`;
  if (h.state === 'stale') return `agent: silent for ${beat} (${who}, running since ${since}); the next make agent takes over`;
  return `agent: running since ${since} (${who}), last tick ${beat} ago, ${info.runs.length} run${info.runs.length === 1 ? '' : 's'} driven`;
}

export class AgentLock {
  private info: AgentInfo;

  private constructor(
    private readonly stateDir: string,
    info: AgentInfo,
  ) {
    this.info = info;
  }

  /**
   * Makes this process the state folder's agent; refuses, naming it, while a live one beats.
   * `say` gets the line when a stale one is taken over.
   */
  static async take(stateDir: string, say: (line: string) => void, staleMs = AGENT_STALE_MS): Promise<AgentLock> {
    mkdirSync(agentDir(stateDir), { recursive: true });
    const file = agentFile(stateDir);
    return withFileLock(`${file}.lock`, async () => {
      const now = Date.now();
      const before = readAgent(stateDir);
      const health = agentHealth(before, before && (before.host === hostname() ? isAlive(before.pid, before.pid_start) : null), now, staleMs);
      if (health.state === 'running' && health.info.pid !== process.pid) {
        throw new UserError(`${describeAgent(health, now)}; one agent per state folder (${stateDir})`);
      }
      if (health.state === 'stale') say(`agent: taking over from pid ${health.info.pid} on ${health.info.host}, silent for ${formatDuration(health.silentMs)}`);
      const stamp = new Date(now).toISOString();
      const info: AgentInfo = { pid: process.pid, pid_start: processStartTime(process.pid), host: hostname(), started_at: stamp, heartbeat_at: stamp, ticks: 0, runs: [] };
      await writeFileAtomically(file, JSON.stringify(info) + '\n', { durable: false });
      return new AgentLock(stateDir, info);
    });
  }

  /** Whether the file still names this process (a stopped agent that woke may have been replaced). */
  mine(): boolean {
    const now = readAgent(this.stateDir);
    return !!now && now.pid === this.info.pid && now.started_at === this.info.started_at && now.host === this.info.host;
  }

  /** The heartbeat: this tick and the runs driven. */
  async beat(runs: string[]): Promise<void> {
    this.info = { ...this.info, heartbeat_at: new Date().toISOString(), ticks: this.info.ticks + 1, runs };
    await writeFileAtomically(agentFile(this.stateDir), JSON.stringify(this.info) + '\n', { durable: false });
  }

  release(): void {
    if (this.mine()) rmSync(agentFile(this.stateDir), { force: true });
  }
}
