// A shell that follows a run in the foreground while the agent's home is a store: an agent on
// another machine cannot see its launcher lock, so the run's record names it (`follower`) and
// it renews that heartbeat a few times per stale time. When it stops (a laptop's lid closed)
// the agent takes the run over and clears the name; the shell, should it wake, finds its name
// gone and leaves the run to the agent instead of driving it too.
import { hostname } from 'node:os';
import { processStartTime } from '../process-alive.js';
import { desiredRun, setFollower, type Follower } from './desired.js';
import type { AgentHome } from './home.js';

export function thisShell(): Follower {
  return { host: hostname(), pid: process.pid, pid_start: processStartTime(process.pid), beat_at: new Date().toISOString() };
}

const same = (a: Follower | undefined, b: Follower) => !!a && a.host === b.host && a.pid === b.pid && a.pid_start === b.pid_start;

export class FollowerBeat {
  private readonly me = thisShell();
  private timer: NodeJS.Timeout | null = null;
  /** set once another process has taken the run over: what became of it, for the shell's last line */
  takenBy: string | null = null;

  constructor(
    private readonly home: AgentHome,
    private readonly runId: string,
    /** called once, when a renewal finds the run taken over (a shell slowed down past the stale time, not asleep) */
    private readonly onTakenOver: () => void,
  ) {}

  /** Renews the heartbeat every third of the stale time until stopped. */
  start(): this {
    this.timer = setInterval(() => void this.stillMine().catch(() => {}), Math.max(1000, this.home.staleMs / 3));
    this.timer.unref();
    return this;
  }

  /** Whether the record still names this shell (renewing its heartbeat if so). */
  async stillMine(): Promise<boolean> {
    for (;;) {
      if (this.takenBy) return false;
      const asked = Date.now();
      const d = await desiredRun(this.home, this.runId);
      if (!d || d.closed || !same(d.follower, this.me)) {
        this.takenBy = d?.closed ? `another process took it over, and it has ended: ${d.closed.state}${d.closed.reason ? ` (${d.closed.reason})` : ''}` : 'the agent took it over; it carries it now';
        this.onTakenOver();
        return false;
      }
      // A read this slow (the shell was stopped while it waited) may predate a takeover: the
      // renewal would write the record back over the agent's. Read it again instead.
      if (Date.now() - asked > this.home.staleMs / 2) continue;
      // A stop taken since the read stands: it is kept apart from the entry this rewrites (desired.ts).
      await setFollower(this.home, d, { ...this.me, beat_at: new Date().toISOString() });
      return true;
    }
  }

  /** Stops the heartbeat and takes this shell's name off the record (a run left open waits for the agent). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.takenBy) return;
    const d = await desiredRun(this.home, this.runId);
    if (d && !d.closed && same(d.follower, this.me)) await setFollower(this.home, d, undefined);
  }

  get follower(): Follower {
    return this.me;
  }
}
