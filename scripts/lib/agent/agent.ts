// The agent: a long-lived owner of the supervisor over every run asked for (desired.ts). Once a
// tick it answers requests (stop, retry), and for each open run that no process follows (the
// run's launcher lock is free: its shell died, it was detached, or it was never followed) it
// drives the run through the same launch as make train: live attempts re-attached, ended ones
// pulled and recorded, the next attempt submitted where the run's backends say, a sharded run
// merged. A run that finishes, is stopped, or is given up on is closed with its outcome. A run
// whose drive fails (its backend does not answer) is tried again after a backoff; so is a stop
// the agent took, until the run's attempts have ended (desired.ts, `stop`).
//
// With its home in the store (home.ts) the agent may run on another machine than the one a run
// was launched from. It then carries a run only once its foreground shell has gone silent past
// the stale time, never an attempt running on that machine itself (backend local), and only
// when this checkout pins the run's code, data and environment exactly as recorded.
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { openBackend, checkResources } from '../backends/index.js';
import type { Backend } from '../backends/backend.js';
import type { Project } from '../project.js';
import { launcherOf } from '../runs/launcher-lock.js';
import { loadRun } from '../runs/run-store.js';
import { comparePins } from '../pins/digest.js';
import { pinExperiment } from '../pins/pin-experiment.js';
import { loadExperiment } from '../spec/experiment.js';
import { retryDelayMs } from '../runs/failover.js';
import { hasLiveUnit, isLiveAttempt, type RunRecord } from '../runs/run-record.js';
import type { Supervisor } from '../runs/supervisor.js';
import { drive, type LaunchEvent } from '../actions/launch.js';
import { stopSeenThrough } from '../actions/stop.js';
import { AgentLock } from './agent-lock.js';
import { closeForStop, closeRun, desiredRuns, desiredRun, followerLive, retryOwed, retryTaken, setFollower, settledState, STOPPED, wantRun, type DesiredRun } from './desired.js';
import { agentHome, type AgentHome } from './home.js';
import { answerRequest, pendingRequests, type AgentAnswer, type AgentRequest } from './requests.js';

export interface AgentOptions {
  /** one line per thing worth telling (the agent's log) */
  say: (line: string) => void;
  tickMs?: number;
}

interface Driven {
  supervisor: Supervisor | null;
  done: Promise<void>;
  /** a stop was asked (force: at once): the run closes as stopped whatever its attempts end as */
  stopped: false | { force?: boolean };
  /** a unit used its attempt budget up */
  gaveUp: string | null;
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

export class Agent {
  private readonly driving = new Map<string, Driven>();
  /** runs whose last drive failed: how many times in a row, and not before when again */
  private readonly waits = new Map<string, { failures: number; notBefore: number }>();
  private stopping = false;
  private wake = new AbortController();
  private readonly home: AgentHome;
  /** runs launched elsewhere that this machine cannot carry, with why (said once) */
  private readonly refusedHere = new Map<string, string>();
  /** this process as the home's agent, while it runs */
  private lock: AgentLock | null = null;

  constructor(
    private readonly project: Project,
    private readonly opts: AgentOptions,
  ) {
    this.home = agentHome(project);
  }

  private say(line: string): void {
    this.opts.say(line);
  }

  /** Ends the loop: runs are left where they run (attempts go on), the next agent re-attaches. */
  stop(): void {
    this.stopping = true;
    this.wake.abort();
  }

  async run(): Promise<void> {
    const { home } = this;
    const lock = (this.lock = await AgentLock.take(home, (l) => this.say(l)));
    this.say(`agent: pid ${process.pid} on ${hostname()}, home ${home.location}`);
    try {
      let failing: string | null = null;
      while (!this.stopping) {
        const outcome = await this.tick(lock).catch((err: unknown) => {
          // A store that does not answer for a while (a 503, a network blip) costs ticks, not the agent.
          const why = firstLine(err);
          if (why !== failing) this.say(`agent: a tick failed (${why}); trying again each tick`);
          failing = why;
          return 'failed' as const;
        });
        if (outcome === 'taken over') {
          this.say(`agent: another agent took over ${home.location}; leaving the runs to it`);
          break;
        }
        if (outcome === 'done' && failing !== null) {
          this.say('agent: ticks go through again');
          failing = null;
        }
        this.wake = new AbortController();
        // A store is asked over the network: a slower tick by default (requests wait for it).
        await sleep(this.opts.tickMs ?? (home.kind === 'store' ? 5000 : 1000), undefined, { signal: this.wake.signal }).catch(() => {});
      }
    } finally {
      for (const d of this.driving.values()) d.supervisor?.detach();
      await Promise.allSettled([...this.driving.values()].map((d) => d.done));
      // A home that does not answer now (a store's 503) costs the next agent a wait, not this one a crash.
      await lock.release().catch((err: unknown) => this.say(`agent: could not give up ${home.location} (${firstLine(err)}); the next agent takes it over once this one's heartbeat is ${Math.round(home.staleMs / 1000)}s old`));
    }
  }

  /** One round: the inbox, the runs to carry, the heartbeat; none once another agent holds the home. */
  private async tick(lock: AgentLock): Promise<'done' | 'taken over'> {
    if (!(await lock.mine())) return 'taken over';
    await this.serveRequests();
    await this.adopt();
    return (await lock.beat([...this.driving.keys()])) ? 'done' : 'taken over';
  }

  // ---- requests ---------------------------------------------------------------------------

  private async serveRequests(): Promise<void> {
    for (const { id, req } of await pendingRequests(this.home)) {
      const answer = await this.serve(req).catch((err: unknown): AgentAnswer => ({ ok: false, message: firstLine(err) }));
      this.say(`agent: ${req.verb} ${req.run_id}: ${answer.message}`);
      await answerRequest(this.home, id, answer);
    }
  }

  private async serve(req: AgentRequest): Promise<AgentAnswer> {
    const { home } = this;
    if (req.verb === 'stop') {
      const force = req.force === true;
      await closeForStop(home, req.run_id, force);
      const asked = { ok: true, message: `asked its live attempts to ${force ? 'stop now' : 'checkpoint and stop'}` };
      const driven = this.driving.get(req.run_id);
      if (driven) {
        driven.stopped = { force };
        driven.supervisor?.stop({ force }); // not opened yet: stopped as it opens (onEvent)
        return asked;
      }
      // Not driven this moment (a drive that failed waits out its backoff): adopt stops it.
      const run = await this.record(req.run_id);
      if (run && hasLiveUnit(run)) {
        this.waits.delete(req.run_id);
        this.wake.abort();
        return asked;
      }
      await this.stopSeenThrough(req.run_id);
      return { ok: true, message: 'no attempt running; it will not be started again' };
    }
    if (this.driving.has(req.run_id)) return { ok: false, message: 'it is running; make stop it first' };
    const [wanted, run] = await Promise.all([desiredRun(home, req.run_id), this.record(req.run_id)]);
    if (!run) return { ok: false, message: 'no such run' };
    const first = run.units[0]?.attempts.at(-1);
    const { run_id, backend = first?.backend ?? run.backends[0]!, host, fleet = run.fleet, batch, cluster, launched_on } = wanted ?? { run_id: run.run_id };
    await wantRun(home, { run_id, backend, host, fleet, batch, cluster, launched_on, only: req.units, slot: req.host });
    this.waits.delete(run.run_id);
    this.wake.abort();
    return { ok: true, message: `the agent starts ${req.units ? `unit${req.units.length > 1 ? 's' : ''} ${req.units.join(', ')}` : 'its unfinished units'}` };
  }

  // ---- runs -------------------------------------------------------------------------------

  /** The run's record: from the store in a store home (another machine may have written it last). */
  private record(runId: string): Promise<RunRecord | null> {
    return loadRun(this.project, runId, { fresh: this.home.kind === 'store' }).catch(() => null);
  }

  /** Starts driving every open run that nobody follows, and stops the live attempts of one whose stop is owed. */
  private async adopt(): Promise<void> {
    const { project, home } = this;
    for (let d of await desiredRuns(home)) {
      if ((d.closed && !d.stop) || this.driving.has(d.run_id) || this.stopping) continue;
      const wait = this.waits.get(d.run_id);
      if (wait && Date.now() < wait.notBefore) continue;
      if (launcherOf(project, d.run_id) !== null || followerLive(d.follower, home.staleMs)) continue; // followed by a shell: it drives
      const run = await this.record(d.run_id);
      if (!run) continue;
      if (d.stop) {
        // A stop owed: its live attempts are stopped and followed to their ends, nothing started.
        if (!hasLiveUnit(run)) await this.stopSeenThrough(d.run_id);
        else if (!this.notCarriedHere(d, run)) this.start(d, run, d.stop);
        continue;
      }
      if (d.only) {
        // A retry's units are asked once: a unit with an attempt since the retry was asked has it.
        const owed = retryOwed(d, run);
        d = owed.length ? { ...d, only: owed } : await retryTaken(home, d);
      }
      const settled = d.only ? { done: false, state: '', reason: null } : settledState(run);
      if (settled.done) {
        await closeRun(home, d.run_id, settled.state, settled.reason);
        continue;
      }
      const elsewhere = this.notCarriedHere(d, run);
      if (elsewhere) {
        if (this.refusedHere.get(d.run_id) !== elsewhere) this.say(`agent: ${d.run_id}: ${elsewhere}`);
        this.refusedHere.set(d.run_id, elsewhere);
        continue;
      }
      this.refusedHere.delete(d.run_id);
      if (d.follower) {
        const silent = Math.round((Date.now() - Date.parse(d.follower.beat_at)) / 1000);
        this.say(`agent: ${d.run_id}: its shell (pid ${d.follower.pid} on ${d.follower.host}) silent for ${silent}s; carrying it from here`);
        await setFollower(home, d, undefined); // that shell, should it wake, leaves the run to this agent
      }
      this.start(d, run);
    }
  }

  /** A stop of the run carried out: the units it cut off before they started read `cancelled`, and nothing more is owed. */
  private stopSeenThrough(runId: string): Promise<void> {
    return stopSeenThrough(this.project, this.home, runId);
  }

  /** Why a run launched from another machine cannot be carried from this one; null when it can. */
  private notCarriedHere(d: DesiredRun, run: RunRecord): string | null {
    if (!d.launched_on || d.launched_on === hostname()) return null;
    const local = run.units.some((u) => {
      const last = u.attempts.at(-1);
      return last?.backend === 'local' && isLiveAttempt(last);
    });
    return local ? `its attempt runs on ${d.launched_on} itself (backend local): only an agent there can follow it` : null;
  }

  /** A run launched from another machine is carried only by a checkout that pins it the same. */
  private async checkPins(run: RunRecord): Promise<void> {
    const exp = await loadExperiment(this.project.root, run.experiment, { smoke: run.smoke === true });
    const pinned = await pinExperiment(this.project.root, this.project.stateDir, exp, run.pins.seed);
    const diffs = comparePins(run.pins, pinned.pins);
    if (diffs.length) throw new Error(`this checkout does not pin it as recorded (${diffs.join('; ')}); bring it to the run's commit`);
  }

  private start(d: DesiredRun, run: RunRecord, stopped: Driven['stopped'] = false): void {
    const driven: Driven = { supervisor: null, done: Promise.resolve(), stopped, gaveUp: null };
    this.driving.set(d.run_id, driven);
    driven.done = this.drive(d, run, driven)
      .then(async (outcome) => {
        this.waits.delete(d.run_id);
        if (outcome) await closeRun(this.home, d.run_id, outcome.state, outcome.reason);
      })
      .catch((err: unknown) => {
        const failures = (this.waits.get(d.run_id)?.failures ?? 0) + 1;
        const delay = Math.max(1000, retryDelayMs(failures + 1));
        this.waits.set(d.run_id, { failures, notBefore: Date.now() + delay });
        this.say(`agent: ${d.run_id}: ${firstLine(err)}; trying again in ${Math.round(delay / 1000)}s`);
      })
      .finally(() => {
        this.driving.delete(d.run_id);
        this.wake.abort();
      });
  }

  /** Drives the run to its end; returns how it closed, or null when it stays open (detached, stranded). */
  private async drive(d: DesiredRun, run: RunRecord, driven: Driven): Promise<{ state: string; reason: string | null } | null> {
    const { project } = this;
    const ctx = { project, host: d.host, fleet: d.fleet, batch: d.batch, cluster: d.cluster, detached: true, sink: (e: LaunchEvent) => this.onEvent(d.run_id, e, driven) };
    // A stop starts nothing: the pins need not match.
    if (d.launched_on && d.launched_on !== hostname() && !driven.stopped) await this.checkPins(run);
    const backend = await this.placeFor(run, d, ctx);
    this.say(`agent: driving ${run.run_id} on ${backend.title}`);
    // An agent stopped past the stale time (a laptop asleep) may have been taken over meanwhile;
    // its supervisor asks once it wakes, before it saves its old view over the new agent's.
    const lock = this.lock!;
    const stillOwner = () => lock.mine();
    const result = await drive(ctx, run, backend, { how: d.only ? 'retry' : 'resume', only: d.only, slot: d.slot, inheritedAsOwn: true, stillOwner });
    if (result.kind !== 'driven' || result.detached) return null;
    if (driven.stopped) {
      await this.stopSeenThrough(run.run_id);
      return STOPPED;
    }
    if (driven.gaveUp) return { state: result.state, reason: driven.gaveUp };
    if (result.stranded.length) throw new Error(`unit${result.stranded.length > 1 ? 's' : ''} ${result.stranded.join(', ')} found nowhere to run`);
    const settled = settledState(result.run);
    if (!settled.done) throw new Error(`stopped at ${result.state} within its attempt budget`);
    this.say(`agent: ${run.run_id} ${settled.state}${settled.reason ? `: ${settled.reason}` : ''}`);
    return { state: settled.state, reason: settled.reason };
  }

  /**
   * The backend a run's unplaced units go to: where its last attempt ran, else its first, or
   * the next of its order that fits its resources and answers now.
   */
  private async placeFor(run: RunRecord, d: DesiredRun, ctx: Parameters<typeof openBackend>[2]): Promise<Backend> {
    const last = run.units.flatMap((u) => u.attempts).at(-1)?.backend ?? d.backend;
    const order = [...new Set([last, ...run.backends.slice(Math.max(0, run.backends.indexOf(last)))])];
    let first: Backend | null = null;
    for (const name of order) {
      const backend = await openBackend(name, this.project, ctx).catch(() => null);
      if (!backend) continue;
      first ??= backend;
      try {
        checkResources(`run ${run.run_id}`, run.spec, backend, this.project.config);
      } catch {
        continue;
      }
      if (await backend.reachable(backend.slots()[0]!.name).catch(() => false)) return backend;
    }
    if (!first) throw new Error(`none of its backends (${order.join(', ')}) could be opened`);
    return first;
  }

  private onEvent(runId: string, e: LaunchEvent, driven: Driven): void {
    const unit = (u: number) => `${runId}${driven.supervisor && 'unit' in e ? ` unit ${u}` : ''}`;
    switch (e.type) {
      case 'opened':
        driven.supervisor = e.supervisor;
        if (driven.stopped) e.supervisor.stop(driven.stopped);
        break;
      case 'started':
        this.say(`agent: ${unit(e.unit)} attempt ${e.attempt} started on ${e.backend}${e.slot === e.backend ? '' : ` ${e.slot}`}`);
        break;
      case 'ended':
        this.say(`agent: ${unit(e.unit)} attempt ${e.attempt} ${e.state}${e.reason ? `: ${e.reason}` : ''}`);
        break;
      case 'moved':
        this.say(`agent: ${unit(e.unit)} moved from ${e.from} to ${e.to} (resumes from step ${e.resumeStep ?? 'none'})`);
        break;
      case 'slot-down':
      case 'slot-refused':
        this.say(`agent: ${runId}: ${e.backend} ${e.slot}: ${e.reason}`);
        break;
      case 'gave-up':
        driven.gaveUp = `gave up after ${e.attempts} attempts (defaults.max_attempts)`;
        this.say(`agent: ${unit(e.unit)} gave up after ${e.attempts} attempts`);
        break;
      case 'notice':
        this.say(`agent: ${unit(e.unit)}: ${e.line}`);
        break;
      default:
        break;
    }
  }
}
