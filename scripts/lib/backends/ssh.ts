// SSH hosts: a rented box (`ssh`, one host) or a fleet (`fleet`, a named group of hosts, one
// slot each with `per_host` attempts at once). Each attempt's self-contained runner runs in a
// tmux session named for its unit and attempt; the project and the runner are pushed once per
// host (remote/prepare-host.ts), and everything the supervisor needs about a host's attempts
// comes back in one pooled round trip per poll.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { RepoPacks } from '../pack/repo-tar.js';
import { readFileOnHost } from '../probe/remote-file.js';
import { hostStoreUrl, pullUnit, pushCheckpoints } from '../remote/host-store.js';
import { parsePoll, parseSubmit, pollArgs, renderLaunch, submitCall, type Launch } from '../remote/launch.js';
import { prepareHost, type Prepared } from '../remote/prepare-host.js';
import { CALL_TIMEOUT_MS, type RemoteHost } from '../remote/remote-host.js';
import { TMUX_SOCKET } from '../remote/host-layout.js';
import { CANCEL_SCRIPT, FIND_SCRIPT, POLL_SCRIPT, SUBMIT_SCRIPT } from '../remote/scripts.js';
import { TERMINAL, type AttemptSpec } from '../runner/attempt-spec.js';
import { mapLimit } from '../map-limit.js';
import { CUT_SHORT, sleepUnless } from '../sleep-unless.js';
import type { Store } from '../store/store.js';
import { UserError } from '../ui/errors.js';
import { formatBytes } from '../ui/format.js';
import { EarlierAttemptRunning, unanswered, type Backend, type BackendLogsOptions, type Capabilities, type Handle, type PollRequest, type PollResult, type Submission } from './backend.js';
import { utf8Text } from './log-text.js';

const SshHandle = z.object({
  backend: z.enum(['ssh', 'fleet']),
  host: z.string(),
  run_id: z.string(),
  /** the attempt's store and scratch name: the run id, or `<run_id>/shards/<i>` (absent in older handles) */
  unit: z.string().optional(),
  attempt: z.union([z.number().int(), z.literal('predict')]),
  root: z.string(),
  session: z.string(),
  fleet: z.string().optional(),
});
type SshHandle = z.infer<typeof SshHandle>;

const unitOf = (h: SshHandle) => h.unit ?? h.run_id;

/** Attempts started per round trip: their arguments stay far below a command line's 128 KiB. */
const SUBMIT_BATCH = 100;

/**
 * A find call's arguments at most, in bytes: half of a channel's 128 KiB command, leaving room for
 * the script and the quoting (the paths and session names need next to none).
 */
const FIND_ARGS_BYTES = 64 * 1024;

/** A submit call's limit: the usual one, plus a second an attempt, since a loaded host can take that long to start each. */
const submitTimeoutMs = (attempts: number) => CALL_TIMEOUT_MS + attempts * 1000;

export interface SshBackendOptions {
  name: 'ssh' | 'fleet';
  /** the fleet's name (fleet handles carry it) */
  fleet?: string;
  hosts: readonly string[];
  /** opens an inventory host (once per host) */
  openHost: (name: string) => Promise<RemoteHost>;
  /** attempts at once on one host */
  perHost: number;
  /** how long a host may stay unanswered before its attempts are lost */
  lostAfterMs: number;
  /** GPUs every host has (the fewest of them) */
  gpus: number;
  /** hosts prepared at once */
  syncParallel: number;
  projectRoot: string;
  store: Store;
  runnerBundle: string;
  syncExcludes?: string[];
  sessionPrefix?: string;
  outputDir?: string;
  bootstrapCommand?: string;
}

/** `items` in order, split into runs whose `bytes` add up to at most `max` (a run holds one item at least). */
function bySize<T>(items: readonly T[], bytes: (item: T) => number, max: number): T[][] {
  const runs: T[][] = [];
  let size = Infinity;
  for (const item of items) {
    const b = bytes(item);
    if (size + b > max) {
      runs.push([]);
      size = 0;
    }
    runs.at(-1)!.push(item);
    size += b;
  }
  return runs;
}

/** FIND_SCRIPT's answer: per attempt, whether it started; null unless every line is there and reads right. */
function parseFound(out: string, count: number): boolean[] | null {
  const lines = out.split('\n');
  if (lines.length !== count + 1 || lines.pop() !== '') return null;
  if (lines.some((l) => l !== 'started' && l !== 'absent')) return null;
  return lines.map((l) => l === 'started');
}

/** How long a follow waits, once the attempt has ended, for each chunk `tail` has yet to send. */
const LAST_CHUNK_MS = 500;
const ENDED = Symbol('the attempt ended');
const STOPPED = Symbol('the follow was stopped');
const QUIET = Symbol('nothing more came');

/**
 * The chunks `tail` sends, each read only when the caller asks for the next: a caller slower than
 * the log leaves the channel's window shut and `tail` waiting on the host. Once `ended` resolves,
 * the chunks that come within LAST_CHUNK_MS of being asked for (what `tail` had yet to send),
 * then no more. `signal` ends it at once, whatever the host is doing.
 */
async function* followed(tail: AsyncGenerator<Buffer, number>, ended: Promise<void>, signal: AbortSignal): AsyncGenerator<Buffer> {
  const stopped = new Promise<typeof STOPPED>((resolve) => {
    if (signal.aborted) resolve(STOPPED);
    signal.addEventListener('abort', () => resolve(STOPPED), { once: true });
  });
  const attemptEnded = ended.then((): typeof ENDED => ENDED);
  // One read asked for at a time; it stays asked for across an `ended` that comes first.
  let asked: Promise<IteratorResult<Buffer, number>> | undefined;
  try {
    for (;;) {
      asked ??= tail.next();
      const got = await Promise.race([asked, attemptEnded, stopped]);
      if (got === STOPPED) return;
      if (got === ENDED) break;
      if (got.done) return;
      asked = undefined;
      yield got.value;
    }
    for (;;) {
      asked ??= tail.next();
      const got = await Promise.race([asked, sleepUnless(LAST_CHUNK_MS, signal).then((): typeof QUIET => QUIET)]);
      if (got === QUIET || got.done) return;
      asked = undefined;
      yield got.value;
    }
  } finally {
    // A read still asked for settles once `signal` closes the channel; return() then releases its connection.
    asked?.catch(() => {});
    void tail.return(-1).catch(() => {});
  }
}

export class SshBackend implements Backend {
  readonly kind = 'placer' as const;
  readonly capabilities: Capabilities;
  readonly attemptsInProcess = false;
  readonly workersReachStore: boolean;
  private readonly opened = new Map<string, Promise<RemoteHost>>();
  private readonly prepared = new Map<string, Promise<Prepared & { ms: number }>>();

  constructor(private readonly opts: SshBackendOptions) {
    this.capabilities = { gpus: opts.gpus, spot: false, shards: opts.name === 'fleet' };
    this.workersReachStore = opts.store.localDir === null;
  }

  get name(): 'ssh' | 'fleet' {
    return this.opts.name;
  }

  get title(): string {
    return this.opts.name === 'fleet' ? `fleet ${this.opts.fleet}` : `ssh ${this.opts.hosts[0]}`;
  }

  host(name: string): Promise<RemoteHost> {
    if (!this.opts.hosts.includes(name)) return Promise.reject(new UserError(`host: ${name} is not one of ${this.opts.hosts.join(', ')}`));
    let h = this.opened.get(name);
    if (!h) {
      h = this.opts.openHost(name);
      this.opened.set(name, h);
      h.catch(() => this.opened.delete(name));
    }
    return h;
  }

  slots() {
    return this.opts.hosts.map((name) => ({ name, capacity: this.opts.perHost }));
  }

  lostAfterMs(): number {
    return this.opts.lostAfterMs;
  }

  slotOf(handle: Handle): string {
    return SshHandle.parse(handle).host;
  }

  /** Readies hosts, `syncParallel` at a time, filling every empty copy of the project from one tar. */
  async prepare(slots: readonly string[], report?: (slot: string, outcome: string | Error, ms: number) => void): Promise<Map<string, Error | null>> {
    const packs = new RepoPacks();
    const out = new Map<string, Error | null>();
    // Each host's failure is caught as its outcome: one never stops the others.
    await mapLimit(slots, this.opts.syncParallel, async (name) => {
      const started = Date.now();
      try {
        const done = await this.prepareOne(name, packs);
        out.set(name, null);
        report?.(name, describePrepared(done), done.ms);
      } catch (err) {
        out.set(name, err as Error);
        report?.(name, err as Error, Date.now() - started);
      }
    });
    return out;
  }

  /** Prepares a host once per backend (a later call gets the same outcome, with the time it took). */
  private prepareOne(name: string, packs?: RepoPacks): Promise<Prepared & { ms: number }> {
    let p = this.prepared.get(name);
    if (!p) {
      const started = Date.now();
      p = this.host(name)
        .then((host) => prepareHost(host, { projectRoot: this.opts.projectRoot, runnerBundle: this.opts.runnerBundle, excludes: this.opts.syncExcludes, packs, bootstrapCommand: this.opts.bootstrapCommand }))
        .then((done) => ({ ...done, ms: Date.now() - started }));
      this.prepared.set(name, p);
      p.catch(() => this.prepared.delete(name)); // a later call tries again
    }
    return p;
  }

  /** Starts a host's attempts with one round trip per SUBMIT_BATCH of them (a fan-out of thousands would otherwise open a channel each). */
  async submitMany(subs: readonly Submission[]): Promise<(Handle | Error)[]> {
    const name = subs[0]!.slot;
    const host = await this.host(name);
    const { runner } = await this.prepareOne(name);
    const out: (Handle | Error)[] = [];
    for (let i = 0; i < subs.length; i += SUBMIT_BATCH) out.push(...(await this.submitBatch(host, runner, subs.slice(i, i + SUBMIT_BATCH))));
    return out;
  }

  private async submitBatch(host: RemoteHost, runner: string, subs: readonly Submission[]): Promise<(Handle | Error)[]> {
    const launches = subs.map(({ spec }) => this.launchOf(host, runner, spec));
    const sent = launches.filter((l): l is Launch => !(l instanceof Error));
    let answers: ReturnType<typeof parseSubmit> = [];
    let failed: Error | null = null;
    if (sent.length) {
      const call = submitCall(sent);
      const r = await host.sh(SUBMIT_SCRIPT, call.args, { stdin: call.stdin, timeoutMs: submitTimeoutMs(sent.length), allowFail: true }).catch((err: Error) => ((failed = err), null));
      if (r) {
        answers = parseSubmit(r.stdout, sent.length);
        const why = (r.stderr.trim() || `sh exited ${r.code}`).split('\n').at(-1)!;
        if (answers.some((a) => !a)) failed = new UserError(`ssh ${host.name}: the submit was cut off: ${why}`);
      }
    }
    let k = 0;
    return subs.map(({ spec }, i) => {
      const launch = launches[i]!;
      if (launch instanceof Error) return launch;
      const answer = answers[k++];
      if (!answer) return failed ?? new UserError(`ssh ${host.name}: no answer to the submit of ${spec.unit_id}`);
      // 10: started already (submit is idempotent per unit and attempt)
      if (answer.code !== 0 && answer.code !== 10) {
        if (answer.code === 12) return new EarlierAttemptRunning(`ssh ${host.name}: an earlier attempt of ${spec.unit_id} still runs in tmux session ${answer.detail}; stop it before starting attempt ${spec.attempt}`);
        return new UserError(`ssh ${host.name}: ${answer.code === 11 ? `cannot write ${launch.attemptDir}/attempt.json` : `tmux exited ${answer.code}`}${answer.detail ? `: ${answer.detail}` : ''}`);
      }
      return this.handleOf(host, spec, launch);
    });
  }

  /** An attempt's launch on a host; an error where it cannot start there. */
  private launchOf(host: RemoteHost, runner: string, spec: AttemptSpec): Launch | UserError {
    if (spec.data_dir?.startsWith('/')) return new UserError(`ssh ${host.name}: data.dir outside the repository cannot be shipped; move it under the competition folder`);
    return renderLaunch(spec, { layout: host.layout, runner, store: hostStoreUrl(this.opts.store), sessionPrefix: this.opts.sessionPrefix, outputDir: this.opts.outputDir });
  }

  /** The handle of an attempt started on a host. */
  private handleOf(host: RemoteHost, spec: AttemptSpec, launch: Launch): Handle {
    const handle: SshHandle = { backend: this.name, host: host.name, run_id: spec.run_id, unit: spec.unit_id, attempt: spec.attempt, root: host.layout.root, session: launch.session };
    return this.opts.fleet ? { ...handle, fleet: this.opts.fleet } : handle;
  }

  /**
   * Looks for the attempts on their host with one round trip per FIND_ARGS_BYTES of their
   * arguments; the host is not prepared, and nothing there is started or written. The launches
   * are rendered as submitBatch renders them, for their session and folder, which renderLaunch
   * derives from the unit and attempt alone: the runner's path is only in the session's command,
   * which a find never sends, so the layout's runtime folder stands in for the path prepare gives.
   */
  async findSubmitted(subs: readonly Submission[]): Promise<(Handle | null)[]> {
    if (!subs.length) return [];
    const host = await this.host(subs[0]!.slot);
    const launches = subs.map(({ spec }) => this.launchOf(host, host.layout.runtime, spec));
    // One that could not be launched (an error here) was never sent.
    const asked = launches.filter((l): l is Launch => !(l instanceof Error));
    const started = new Set<Launch>();
    for (const batch of bySize(asked, (l) => l.attemptDir.length + l.session.length + 8, FIND_ARGS_BYTES)) {
      const found = await this.findBatch(host, batch);
      for (const [i, l] of batch.entries()) if (found[i]) started.add(l);
    }
    return subs.map(({ spec }, i) => {
      const launch = launches[i]!;
      return launch instanceof Error || !started.has(launch) ? null : this.handleOf(host, spec, launch);
    });
  }

  /** FIND_SCRIPT over some of a host's launches: whether each started. */
  private async findBatch(host: RemoteHost, launches: readonly Launch[]): Promise<boolean[]> {
    const r = await host.sh(FIND_SCRIPT, [TMUX_SOCKET, ...launches.flatMap((l) => [l.attemptDir, l.session])], { allowFail: true });
    const found = r.code === 0 ? parseFound(r.stdout, launches.length) : null;
    if (found) return found;
    const lines = r.stdout.split('\n').length - 1;
    const why = r.stderr.trim().split('\n').at(-1) || `sh exited ${r.code} after ${lines} of its ${launches.length} lines`;
    throw new UserError(`ssh ${host.name}: the find of submitted attempts ${r.code === 0 ? 'was cut off' : 'failed'}: ${why}`);
  }

  async pollMany(reqs: readonly PollRequest[]): Promise<PollResult[]> {
    const handles = reqs.map((r) => SshHandle.parse(r.handle));
    const marker = `--switchyard-${randomBytes(8).toString('hex')}--`;
    try {
      const host = await this.host(handles[0]!.host);
      const args = pollArgs(marker, handles.map((h, i) => ({ dir: host.layout.attemptDir(unitOf(h), h.attempt), session: h.session, eventsFrom: reqs[i]!.eventsFrom })));
      const out = (await host.sh(POLL_SCRIPT, args, { timeoutMs: host.target.connectTimeoutSec * 1000 + 5000 })).stdout;
      return parsePoll(out, marker, handles.length).map((a, i): PollResult => {
        const base = { exit_code: a.status?.exit_code ?? null, events: a.events, metrics: a.metrics, last_line: a.lastLine, unanswered: false };
        if (a.status && TERMINAL.has(a.status.state)) return { ...base, state: a.status.state, reason: a.status.reason };
        if (a.alive) return { ...base, state: 'running', reason: null };
        return { ...base, state: 'lost', reason: `the runner's tmux session ${handles[i]!.session} on ${host.name} is gone without a final status` };
      });
    } catch (err) {
      return reqs.map(() => unanswered((err as Error).message));
    }
  }

  async cancel(handle: Handle, opts: { force?: boolean } = {}): Promise<void> {
    const h = SshHandle.parse(handle);
    const host = await this.host(h.host);
    await host.sh(CANCEL_SCRIPT, [host.layout.attemptDir(unitOf(h), h.attempt), opts.force ? 'KILL' : 'TERM'], { allowFail: true });
  }

  /**
   * Over SFTP on the host's pooled connection: no handshake, no remote process. A host that does
   * not answer within its connect timeout gives null (the caller has the store's copy).
   */
  async readAttemptFile(handle: Handle, name: 'metrics.jsonl'): Promise<Buffer | null> {
    const h = SshHandle.parse(handle);
    const host = await this.host(h.host);
    const file = `${host.layout.attemptDir(unitOf(h), h.attempt)}/${name}`;
    return readFileOnHost(host, file, { timeoutMs: host.target.connectTimeoutSec * 1000 }).catch(() => null);
  }

  /**
   * The whole log: `cat` on a channel of its own, read as the reader takes it. Following:
   * `tail -F` over a channel of the pooled connection, read the same way (a reader slower than
   * the log holds `tail` on the host, and memory here stays a window or two), while a poll each
   * second watches for the attempt's end. A channel that fails (refused, lost) fails the follow; an abort ends
   * it at once.
   */
  async *logs(handle: Handle, opts: BackendLogsOptions): AsyncIterable<string> {
    const h = SshHandle.parse(handle);
    const host = await this.host(h.host);
    const file = `${host.layout.attemptDir(unitOf(h), h.attempt)}/${opts.stream ?? 'stdout'}.log`;
    if (!opts.follow) {
      // Read from the channel as the reader takes it; a missing file is an empty log.
      yield* utf8Text(host.pool.read(host.target, ['cat', file], { signal: opts.signal }));
      return;
    }
    if (opts.signal?.aborted) return;
    // Ends the tail and the polls: the caller's abort, or the follow's own end.
    const stop = new AbortController();
    const onAbort = () => stop.abort(CUT_SHORT);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const tail = host.pool.read(host.target, ['tail', '-n', '+1', '-F', file], { signal: stop.signal });
      yield* utf8Text(followed(tail, this.attemptEnd(handle, stop.signal), stop.signal));
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      stop.abort(CUT_SHORT);
    }
  }

  /** Resolves once a poll (one a second) says the attempt has ended, or once `signal` has aborted. */
  private async attemptEnd(handle: Handle, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const [polled] = await this.pollMany([{ handle, eventsFrom: Number.MAX_SAFE_INTEGER }]);
      if (TERMINAL.has(polled!.state) && !polled!.unanswered) return;
      await sleepUnless(1000, signal);
    }
  }

  async pull(handle: Handle): Promise<void> {
    const h = SshHandle.parse(handle);
    await pullUnit(await this.host(h.host), this.opts.store, unitOf(h));
  }

  async pushCheckpoints(slot: string, unit: string): Promise<void> {
    await pushCheckpoints(await this.host(slot), this.opts.store, unit);
  }

  async reachable(slot: string): Promise<boolean> {
    try {
      const host = await this.host(slot);
      return (await host.run(['true'], { allowFail: true, timeoutMs: host.target.connectTimeoutSec * 1000 + 5000 })).code === 0;
    } catch {
      return false;
    }
  }
}

/** A host's ✓ line: `project unpacked (2000 files, 24.6 MB), runner sent`. */
export function describePrepared(p: Prepared): string {
  const project = p.repo.via === 'tar' ? `project unpacked (${p.repo.files} files, ${formatBytes(p.repo.bytes)})` : `project synced (${p.repo.files} files changed, ${formatBytes(p.repo.bytes)})`;
  return `${project}, runner ${p.runnerSent ? 'sent' : 'present'}`;
}
