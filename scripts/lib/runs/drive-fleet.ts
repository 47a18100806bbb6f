// The fleet supervisor: starts the shards of a sharded run on the hosts of a fleet (per_host at
// a time per host), follows them all from one loop, keeps the run record and the ledger
// current, and when a host stops answering for longer than lost_after_sec, moves its
// unfinished shards to the healthy hosts, where they resume from their last committed
// checkpoint. Anything that only looks (fleet-status, fleet-pull, merge) uses refresh().
import { setTimeout as sleep } from 'node:timers/promises';
import { EarlierAttemptRunning, type PollResult } from '../backends/backend.js';
import type { FleetBackend, FleetHandle } from '../backends/fleet.js';
import { planShards } from '../backends/fleet.js';
import type { Prepared } from '../backends/ssh.js';
import type { Project } from '../project.js';
import { storedSteps } from '../runner/store-checkpoints.js';
import { FileStore } from '../store/file-store.js';
import type { LiveTable } from '../ui/live-table.js';
import { formatDuration } from '../ui/status-line.js';
import { renderTable } from '../ui/table.js';
import { formatBytes } from './describe.js';
import { attemptSpec, recordAttemptEnd, recordEvents } from './drive-run.js';
import { UserError } from '../ui/errors.js';
import { plural } from '../ui/plural.js';
import { runState, shardUnit, startedAttempt, type AttemptRecord, type RunRecord, type RunState, type ShardRecord } from './run-record.js';
import { recordInLedger, saveRun } from './run-store.js';

const TICK_MS = 1000;

/** One shard attempt being followed. */
interface Active {
  shard: ShardRecord;
  attempt: AttemptRecord;
  host: string;
  /** the in-flight copy of its newest checkpoints to this machine (file store) */
  mirror: Promise<void> | null;
}

interface HostHealth {
  /** when polls of this host started failing; null while it answers */
  failingSince: number | null;
  /** why the host is lost: its attempts ended, its shards moved */
  down: string | null;
  /** why a host that answers takes no more shards (not ready, a failed push): what runs there goes on */
  refused: string | null;
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

export interface FleetDriveOptions {
  /** attempts per shard, counting earlier ones, before the shard gives up */
  maxAttempts: number;
  /** only these shards (fleet-retry); default every unfinished shard */
  only?: number[];
  /** start the selected shards on this host (fleet-retry host=) */
  host?: string;
  /** true once the launcher was told to stop: no new attempts then, running ones go on */
  detached?: () => boolean;
  /** overrides the fleet's requeue setting for this launch (make fleet-search requeue=0) */
  requeue?: boolean;
}

/** A host's ✓ line: `project unpacked (2000 files, 24.6 MB), runner sent`. */
export function describePrepared(p: Prepared): string {
  const project = p.repo.via === 'tar' ? `project unpacked (${plural(p.repo.files, 'file')}, ${formatBytes(p.repo.bytes)})` : `project synced (${plural(p.repo.files, 'file')} changed, ${formatBytes(p.repo.bytes)})`;
  return `${project}, runner ${p.runnerSent ? 'sent' : 'present'}`;
}

export function ensureShards(run: RunRecord, fleet: string): ShardRecord[] {
  run.fleet ??= fleet;
  run.shards ??= Array.from({ length: run.spec.shards.count }, (_, index) => ({ index, attempts: [], moved_from: [] }));
  return run.shards;
}

const hostOf = (a: AttemptRecord | undefined) => (typeof a?.handle?.host === 'string' ? a.handle.host : null);

export class FleetSupervisor {
  private readonly active = new Map<number, Active>();
  private readonly queues = new Map<string, ShardRecord[]>();
  private readonly health = new Map<string, HostHealth>();
  private readonly lastLines = new Map<number, string>();
  /** what look() saw, for a display that records nothing */
  private readonly seen = new Map<number, { state: string; step: number | null }>();
  /** per shard: the attempt number past which it gives up in this launch */
  private readonly limit = new Map<number, number>();

  constructor(
    private readonly project: Project,
    private readonly run: RunRecord,
    private readonly fleet: FleetBackend,
    private readonly ui: LiveTable,
  ) {
    for (const h of fleet.hosts) {
      this.queues.set(h, []);
      this.health.set(h, { failingSince: null, down: null, refused: null });
    }
    const shards = ensureShards(run, fleet.fleet);
    for (const shard of shards) {
      const last = shard.attempts.at(-1);
      if (last?.state === 'running' && last.handle) {
        this.active.set(shard.index, { shard, attempt: last, host: hostOf(last) ?? '?', mirror: null });
      }
    }
  }

  private say(line: string): void {
    this.ui.say(line);
  }

  private get count(): number {
    return this.run.spec.shards.count;
  }

  /** Where each shard goes: where it ran last, else its planned host. */
  private placement(only: number[] | undefined, host: string | undefined): Map<number, string> {
    const planned = planShards(this.count, this.fleet.hosts);
    const out = new Map<number, string>();
    for (const shard of this.run.shards!) {
      if ((only && !only.includes(shard.index)) || this.active.has(shard.index)) continue;
      if (!only && shard.attempts.at(-1)?.state === 'succeeded') continue;
      const last = hostOf(shard.attempts.at(-1));
      out.set(shard.index, host ?? (last && this.fleet.hosts.includes(last) ? last : planned[shard.index]!));
    }
    return out;
  }

  /** Prints the shard → host placement before anything starts. */
  private describe(placed: Map<number, string>): void {
    const perHost = this.fleet.config.per_host;
    const how = perHost === 1 ? 'one at a time per host' : `up to ${perHost} at once per host`;
    const used = new Set(placed.values()).size;
    this.say(`fleet ${this.fleet.fleet}: ${placed.size} of ${this.count} shards on ${used} host${used === 1 ? '' : 's'}, ${how}`);
    for (const h of this.fleet.hosts) {
      const mine = [...placed].filter(([, host]) => host === h).map(([i]) => i);
      if (mine.length) this.say(`  ${h}: shard${mine.length > 1 ? 's' : ''} ${mine.join(', ')}`);
    }
    for (const a of this.active.values()) this.say(`  ${a.host}: shard ${a.shard.index} already running (attempt ${a.attempt.n}), re-attaching`);
  }

  /**
   * Launches the unfinished (or `only`) shards and follows every shard to its end. Returns the
   * run's state: succeeded when every shard did.
   */
  async drive(opts: FleetDriveOptions): Promise<RunState> {
    const placed = this.placement(opts.only, opts.host);
    this.describe(placed);
    for (const shard of this.run.shards!) this.limit.set(shard.index, shard.attempts.length + opts.maxAttempts);
    const hosts = [...new Set(placed.values())];
    const prepared = await this.fleet.prepare(hosts, (host, outcome, ms) =>
      this.say(outcome instanceof Error ? `✗ ${host}: ${outcome.message}` : `✓ ${host}: ${describePrepared(outcome)} (${formatDuration(ms)})`),
    );
    if (hosts.length && hosts.every((h) => prepared.get(h))) {
      throw new UserError(`fleet ${this.fleet.fleet}: no host could be prepared (${prepared.get(hosts[0]!)!.message})`);
    }
    for (const [index, host] of placed) this.queues.get(host)!.push(this.run.shards![index]!);
    // A host that could not be prepared takes no shards; one it runs already is followed as ever.
    await this.refuse(new Map([...prepared].filter(([, err]) => err).map(([h, err]) => [h, firstLine(err)])), opts);
    await saveRun(this.project, this.run);

    while (!opts.detached?.()) {
      await this.startShards(opts);
      await this.tick(opts);
      this.ui.update(this.table());
      if (!this.active.size && !this.startable()) break;
      await sleep(TICK_MS);
    }
    this.ui.done();
    if (!this.ui.interactive) this.say(this.table());
    return runState(this.run);
  }

  /** Polls the running shards once and records what changed; starts and moves nothing. */
  async refresh(): Promise<void> {
    await this.tick({ maxAttempts: 0 }, false);
  }

  /**
   * Polls the running shards once for display only: nothing is recorded, so a look from another
   * shell never races the launcher that follows them.
   */
  async look(): Promise<void> {
    await Promise.all(
      [...this.active.values()].map(async (a) => {
        const poll = await this.fleet.poll(a.attempt.handle!);
        const committed = poll.events.filter((e) => e.type === 'ckpt.committed').at(-1);
        this.seen.set(a.shard.index, { state: poll.unanswered ? 'unreachable' : poll.state, step: committed?.step ?? a.attempt.last_step });
        if (poll.last_line) this.lastLines.set(a.shard.index, poll.last_line);
      }),
    );
  }

  /** A shard's state: as last seen by look(), else as recorded. */
  stateOf(index: number): string {
    return this.seen.get(index)?.state ?? this.run.shards![index]!.attempts.at(-1)?.state ?? 'created';
  }

  /** The shards being followed: their attempts' handles, for stopping them. */
  running(): { shard: number; handle: FleetHandle }[] {
    return [...this.active.values()].map((a) => ({ shard: a.shard.index, handle: a.attempt.handle as FleetHandle }));
  }

  private open(host: string): boolean {
    const health = this.health.get(host)!;
    return !health.down && !health.refused;
  }

  private startable(): boolean {
    return [...this.queues].some(([h, q]) => q.length > 0 && this.open(h));
  }

  private async startShards(opts: FleetDriveOptions): Promise<void> {
    const perHost = this.fleet.config.per_host;
    for (const [host, queue] of this.queues) {
      if (!this.open(host)) continue;
      while (queue.length && [...this.active.values()].filter((a) => a.host === host).length < perHost) {
        const shard = queue.shift()!;
        if (shard.attempts.length + 1 > this.limit.get(shard.index)!) {
          this.say(`shard ${shard.index}: giving up after ${opts.maxAttempts} attempts; make fleet-retry run=${this.run.run_id} shard=${shard.index}`);
          continue;
        }
        try {
          await this.start(shard, host);
          this.health.get(host)!.failingSince = null;
        } catch (err) {
          queue.unshift(shard);
          if (err instanceof EarlierAttemptRunning) {
            // Its last attempt is still ending there (or was started by hand): wait, never start it twice.
            this.lastLines.set(shard.index, `(waiting: ${firstLine(err)})`);
          } else if (await this.fleet.reachable(host)) {
            await this.refuse(new Map([[host, firstLine(err)]]), opts);
          } else {
            // Not answering: tried again next tick, until lost_after_sec makes the host lost.
            const health = this.health.get(host)!;
            health.failingSince ??= Date.now();
            if (Date.now() - health.failingSince >= this.fleet.config.lost_after_sec * 1000) await this.hostDown(host, firstLine(err), opts);
          }
          break;
        }
      }
    }
  }

  private async start(shard: ShardRecord, host: string): Promise<void> {
    const unit = shardUnit(this.run.run_id, shard.index);
    const previous = hostOf(shard.attempts.at(-1));
    if (previous && previous !== host) await this.fleet.pushCheckpoints(host, unit);
    const n = shard.attempts.length + 1;
    const handle: FleetHandle = await this.fleet.submitOn(host, attemptSpec(this.project, this.run, n, { index: shard.index, count: this.count }));
    const attempt = startedAttempt(n, 'fleet', handle);
    shard.attempts.push(attempt);
    this.active.set(shard.index, { shard, attempt, host, mirror: null });
    await saveRun(this.project, this.run);
    await recordInLedger(this.project, 'attempt.started', { run_id: this.run.run_id, shard: shard.index, attempt: n, backend: 'fleet', host });
  }

  private async tick(opts: FleetDriveOptions, act = true): Promise<void> {
    const polled = await Promise.all([...this.active.values()].map(async (a) => ({ a, poll: await this.fleet.poll(a.attempt.handle!) })));
    for (const { a, poll } of polled) await this.observe(a, poll, opts, act);
  }

  private async observe(a: Active, poll: PollResult, opts: FleetDriveOptions, act: boolean): Promise<void> {
    // Polled before its host went down earlier in this tick: that already ended it.
    if (this.active.get(a.shard.index) !== a) return;
    const { shard, attempt } = a;
    const health = this.health.get(a.host);
    if (!poll.unanswered && health) health.failingSince = null;
    if (poll.events.length > attempt.events_seen) {
      const fresh = poll.events.slice(attempt.events_seen);
      await recordEvents(this.project, this.run, fresh, (line) => this.say(line), shard.index);
      attempt.events_seen = poll.events.length;
      for (const e of fresh) if (e.type === 'ckpt.committed') attempt.last_step = e.step;
      if (fresh.some((e) => e.type === 'ckpt.committed')) this.mirror(a);
      await saveRun(this.project, this.run);
    }
    if (poll.last_line) this.lastLines.set(shard.index, poll.last_line);
    if (poll.state === 'running') return;
    if (poll.unanswered && health) {
      // The host did not answer: a blip, or a host gone. Its shards keep their place until
      // lost_after_sec; only a poll that answers can say the runner is gone.
      health.failingSince ??= Date.now();
      this.lastLines.set(shard.index, `(${a.host} not answering: ${poll.reason ?? 'unreachable'})`);
      if (!act || Date.now() - health.failingSince < this.fleet.config.lost_after_sec * 1000) return;
      await this.hostDown(a.host, poll.reason ?? 'unreachable', opts);
      return;
    }
    await this.end(a, poll);
    if (!act || opts.detached?.()) return;
    // A preempted attempt, or a runner gone on a host that still answers: again, same host.
    if (poll.state === 'preempted' || poll.state === 'lost') this.queues.get(a.host)?.push(shard);
  }

  private async end(a: Active, poll: PollResult): Promise<void> {
    this.active.delete(a.shard.index);
    await a.mirror;
    const done = poll.state === 'succeeded' ? '✓' : '✗';
    await recordAttemptEnd(this.project, this.run, a.attempt, poll, () => this.fleet.pull(a.attempt.handle!), (line) => this.say(line), a.shard.index);
    const took = formatDuration(Date.parse(a.attempt.ended_at!) - Date.parse(a.attempt.started_at));
    this.say(`${done} shard ${a.shard.index} on ${a.host}: ${poll.state} after ${took}${poll.reason ? ` (${poll.reason})` : ''}`);
  }

  /** Copies a shard's newest checkpoints home in the background, so a move can resume from them. */
  private mirror(a: Active): void {
    if (!(this.project.store instanceof FileStore) || a.mirror) return;
    a.mirror = this.fleet
      .pull(a.attempt.handle!)
      .catch(() => {}) // the host may be going away; the next checkpoint tries again
      .finally(() => (a.mirror = null));
  }

  /** A host stopped answering: its attempts are lost, and its shards move unless requeue is off. */
  private async hostDown(host: string, reason: string, opts: FleetDriveOptions): Promise<void> {
    const health = this.health.get(host)!;
    if (health.down) return;
    health.down = reason;
    this.say(`host ${host} lost: ${reason}`);
    const stranded = [...this.active.values()].filter((a) => a.host === host);
    for (const a of stranded) {
      this.active.delete(a.shard.index);
      await a.mirror;
      // Nothing to bring home from a host that does not answer; steps that never made it off
      // it are recorded as lost with the attempt's end (recordAttemptEnd).
      const lost: PollResult = { state: 'lost', reason: `host ${host} stopped answering: ${reason}`, exit_code: null, restored_step: null, last_step: null, metrics: null, events: [] };
      await recordAttemptEnd(this.project, this.run, a.attempt, lost, async () => {}, (line) => this.say(line), a.shard.index);
    }
    await this.moveAway(host, [...stranded.map((a) => a.shard), ...this.queues.get(host)!.splice(0)], opts);
  }

  /**
   * Hosts that answer but cannot take shards (`reasons`: host → why): they get no new shards,
   * and their queued ones move; shards already running there go on and are followed as ever.
   * All are closed before any shard moves, so none moves onto another of them.
   */
  private async refuse(reasons: Map<string, string>, opts: FleetDriveOptions): Promise<void> {
    const fresh = [...reasons].filter(([host]) => this.open(host));
    for (const [host, reason] of fresh) this.health.get(host)!.refused = reason;
    for (const [host, reason] of fresh) {
      this.say(`host ${host} takes no shards: ${reason}`);
      await this.moveAway(host, this.queues.get(host)!.splice(0), opts);
    }
  }

  /** Moves shards off `host` onto the healthy hosts, unless requeue is off. */
  private async moveAway(host: string, moving: ShardRecord[], opts: FleetDriveOptions): Promise<void> {
    if (!moving.length) return;
    if (!(opts.requeue ?? this.fleet.config.requeue) || opts.detached?.()) {
      this.say(`shards ${moving.map((s) => s.index).join(', ')} wait for ${host} (requeue is off); make fleet-retry run=${this.run.run_id} shard=<i> host=<other>`);
      return;
    }
    for (const shard of moving) await this.move(shard, host);
    await saveRun(this.project, this.run);
  }

  private async move(shard: ShardRecord, from: string): Promise<void> {
    const healthy = this.fleet.hosts.filter((h) => this.open(h));
    if (!healthy.length) {
      this.say(`shard ${shard.index}: no healthy host left to move it to`);
      return;
    }
    const load = (h: string) => this.queues.get(h)!.length + [...this.active.values()].filter((a) => a.host === h).length;
    const to = healthy.reduce((best, h) => (load(h) < load(best) ? h : best));
    shard.moved_from.push(from);
    // What it resumes from: the newest checkpoint this machine's store holds (mirrored home, or shared).
    const stored = await storedSteps(this.project.store, shardUnit(this.run.run_id, shard.index));
    const step = stored.filter((s) => s.hasManifest).at(-1)?.step ?? null;
    this.queues.get(to)!.push(shard);
    this.say(`shard ${shard.index} moved from ${from} to ${to}${step === null ? ' (starts over: no committed checkpoint here)' : ` (resumes from checkpoint step ${step})`}`);
    await recordInLedger(this.project, 'shard.moved', { run_id: this.run.run_id, shard: shard.index, from, to, resume_step: step });
  }

  /** The progress table: one row per shard. */
  table(): string {
    const rows = this.run.shards!.map((shard) => {
      const last = shard.attempts.at(-1);
      const live = this.active.get(shard.index);
      const queuedOn = [...this.queues].find(([, q]) => q.includes(shard))?.[0];
      const seen = this.seen.get(shard.index);
      const state = seen?.state ?? (live ? 'running' : queuedOn ? 'queued' : (last?.state ?? 'created'));
      const end = last?.ended_at && !live ? Date.parse(last.ended_at) : Date.now();
      const elapsed = last ? formatDuration(end - Date.parse(last.started_at)) : null;
      const line = (this.lastLines.get(shard.index) ?? '').slice(0, 60);
      return [shard.index, live?.host ?? queuedOn ?? hostOf(last), state, last?.n ?? null, seen?.step ?? last?.last_step ?? null, elapsed, line];
    });
    return renderTable(['SHARD', 'HOST', 'STATE', 'ATTEMPT', 'CKPT', 'ELAPSED', 'LAST LINE'], rows);
  }
}

/** Whether every shard of a sharded run has succeeded. */
export function allShardsSucceeded(run: RunRecord): boolean {
  return !!run.shards?.length && run.shards.every((s) => s.attempts.at(-1)?.state === 'succeeded');
}
