// One agent per home (home.ts): `agent.json` holds the pid (with its start time, against pid
// reuse), the host, when it started and its heartbeat, rewritten every tick. A holder that is
// gone, or alive but silent past the home's stale time (stopped, hung, a laptop that slept), is
// taken over with a message; the silent one, should it wake, finds the file no longer names it
// and leaves the runs to the new holder. `make agent-status`, `make status` and the dashboard
// read the same file.
//
// In a store there is no lock to take the file under: a taker writes, waits a moment and reads
// it back, and of two that wrote at once only the one the file names goes on. Should both ever
// drive a run, the backends still start each (unit, attempt) once (found by its name) and a
// runner superseded by a newer attempt stops writing (runner/attempt-fence.ts).
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withFileLock } from '../ledger/file-lock.js';
import { isAlive, processStartTime } from '../process-alive.js';
import { UserError } from '../ui/errors.js';
import { formatDuration } from '../ui/format.js';
import type { AgentHome } from './home.js';

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

const AGENT_FILE = 'agent.json';
/** How long a store taker waits before it reads the file back. */
const SETTLE_MS = 1500;

export type AgentHealth =
  | { state: 'running'; info: AgentInfo }
  /** alive (or on another host) but its heartbeat is older than the stale time */
  | { state: 'stale'; info: AgentInfo; silentMs: number }
  | { state: 'stopped'; info: AgentInfo | null };

/** What a lock file says of its holder, given whether its pid lives (null: another host, cannot tell). */
export function agentHealth(info: AgentInfo | null, alive: boolean | null, now: number, staleMs: number): AgentHealth {
  if (!info || alive === false) return { state: 'stopped', info };
  const silentMs = now - Date.parse(info.heartbeat_at);
  return silentMs > staleMs ? { state: 'stale', info, silentMs } : { state: 'running', info };
}

export async function readAgent(home: AgentHome): Promise<AgentInfo | null> {
  const text = await home.read(AGENT_FILE);
  try {
    return text ? (JSON.parse(text) as AgentInfo) : null;
  } catch {
    return null; // a hand-edited file: no holder
  }
}

/** Whether the holder's pid lives: known only on its own host. */
const aliveHere = (info: AgentInfo | null) => (info && info.host === hostname() ? isAlive(info.pid, info.pid_start) : null);

/** The agent of this home as it stands now. */
export async function lookAtAgent(home: AgentHome, now = Date.now()): Promise<AgentHealth> {
  const info = await readAgent(home);
  return agentHealth(info, aliveHere(info), now, home.staleMs);
}

/** The holder, for people: `pid 12`, or `pid 12 on nas` from another machine. */
export const agentWho = (info: Pick<AgentInfo, 'pid' | 'host'>) => `pid ${info.pid}${info.host === hostname() ? '' : ` on ${info.host}`}`;

/** Whether the home's live agent drives the run now (listed at its last tick, or holding its launcher lock here). */
export function agentDrives(h: AgentHealth, runId: string, launcherPid: number | null): h is { state: 'running'; info: AgentInfo } {
  return h.state === 'running' && (h.info.runs.includes(runId) || launcherPid === h.info.pid);
}

/** One line for make status and make agent-status. */
export function describeAgent(h: AgentHealth, now = Date.now()): string {
  if (h.state === 'stopped') return 'agent: not running (make agent starts it, make agent-install keeps it running)';
  const { info } = h;
  const since = `${info.started_at.slice(0, 19).replace('T', ' ')} UTC`;
  const beat = formatDuration(now - Date.parse(info.heartbeat_at));
  const who = agentWho(info);
  if (h.state === 'stale') return `agent: silent for ${beat} (${who}, running since ${since}); the next make agent takes over`;
  return `agent: running since ${since} (${who}), last tick ${beat} ago, ${info.runs.length} run${info.runs.length === 1 ? '' : 's'} driven`;
}

export class AgentLock {
  private info: AgentInfo;

  private constructor(
    private readonly home: AgentHome,
    info: AgentInfo,
  ) {
    this.info = info;
  }

  /**
   * Makes this process the home's agent; refuses, naming it, while a live one beats. `say` gets
   * the line when a stale one is taken over.
   */
  static async take(home: AgentHome, say: (line: string) => void): Promise<AgentLock> {
    const taken = await AgentLock.exclusively(home, async () => {
      const now = Date.now();
      const before = await readAgent(home);
      const health = agentHealth(before, aliveHere(before), now, home.staleMs);
      if (health.state === 'running' && !(health.info.pid === process.pid && health.info.host === hostname())) {
        throw new UserError(`${describeAgent(health, now)}; one agent per ${home.kind === 'store' ? 'store' : 'state folder'} (${home.location})`);
      }
      if (health.state === 'stale') say(`agent: taking over from pid ${health.info.pid} on ${health.info.host}, silent for ${formatDuration(health.silentMs)}`);
      const stamp = new Date(now).toISOString();
      const info: AgentInfo = { pid: process.pid, pid_start: processStartTime(process.pid), host: hostname(), started_at: stamp, heartbeat_at: stamp, ticks: 0, runs: [] };
      await home.write(AGENT_FILE, JSON.stringify(info) + '\n', { durable: false });
      return new AgentLock(home, info);
    });
    if (home.kind === 'store') {
      await sleep(SETTLE_MS);
      if (!(await taken.mine())) {
        const other = await readAgent(home);
        throw new UserError(`agent: pid ${other?.pid ?? '?'} on ${other?.host ?? '?'} took ${home.location} at the same moment; one agent per store`);
      }
    }
    return taken;
  }

  /** Runs `fn` under a cross-process file lock in a local home; a store has none (see the top). */
  private static async exclusively<T>(home: AgentHome, fn: () => Promise<T>): Promise<T> {
    if (home.kind === 'store') return fn();
    await mkdir(home.location, { recursive: true }); // a state folder no run has written to yet
    return withFileLock(path.join(home.location, `${AGENT_FILE}.lock`), fn);
  }

  /** Whether the file still names this process (a stopped agent that woke may have been replaced). */
  async mine(): Promise<boolean> {
    const now = await readAgent(this.home);
    return !!now && now.pid === this.info.pid && now.started_at === this.info.started_at && now.host === this.info.host;
  }

  /**
   * The heartbeat: this tick and the runs driven. False, writing nothing, once the file names
   * another agent: one that took over while this one was stopped mid-tick keeps the home (a
   * write here would take it back, and the newer one would leave its runs to an older view).
   */
  async beat(runs: string[]): Promise<boolean> {
    if (!(await this.mine())) return false;
    this.info = { ...this.info, heartbeat_at: new Date().toISOString(), ticks: this.info.ticks + 1, runs };
    await this.home.write(AGENT_FILE, JSON.stringify(this.info) + '\n', { durable: false });
    return true;
  }

  async release(): Promise<void> {
    if (await this.mine()) await this.home.remove(AGENT_FILE);
  }
}
