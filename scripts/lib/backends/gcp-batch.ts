// Google Cloud Batch: a scheduler. One `batch:` entry of cluster_fleet_config.ts is its one slot;
// each submitMany is one Batch job (batch/render-job.ts), one task per unit, and Batch places the
// tasks. Every task fetches the Node runtime, the runner and the project's code from the store by
// SHA-256 (uploaded here once per content) and its runner writes the run's store itself, so the
// supervisor reads what a runner reported (status, events, metrics, logs) from the store, and what
// Batch says (queued, a VM preempted or lost) from one getJob and one listing of tasks per job.
//
// Batch cannot signal one task of a job, so `cancel` asks through the store: it leaves the
// attempt's stop request there, which the task's script looks for every 5 s and hands to its
// runner (checkpoint, then stop, as `make stop` does everywhere). Once every live unit of a job
// has been asked, the job is deleted when their tasks have ended, or when the grace is over
// (`force`: at once), which kills what still runs. See docs/architecture.md, "Google Cloud Batch".
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { BatchServiceClient, protos } from '@google-cloud/batch';
import { z } from 'zod';
import { batchTarget, renderBatchJob, type BatchArtifacts } from '../batch/render-job.js';
import { batchJobId } from '../batch/gcp-names.js';
import { blobKey, nodeArch } from '../batch/task-script.js';
import { tasksTell, taskStates, type TaskState } from '../batch/task-states.js';
import { CONFIG_FILE, type Config } from '../config/load-config.js';
import { sha256Hex } from '../hash.js';
import { packRepo } from '../pack/repo-tar.js';
import { nodeRuntimeTarball } from '../remote/node-runtime.js';
import { repoExcludes } from '../remote/remote-host.js';
import { loadRunnerBundle } from '../remote/runner-bundle.js';
import { EVENTS_FILE, STOP_REQUEST, TERMINAL, type AttemptSpec, type AttemptStatus, type RunnerEvent } from '../runner/attempt-spec.js';
import { parseEventLines, parseJsonLines } from '../runner/jsonl.js';
import { sleepUnless } from '../sleep-unless.js';
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';
import type { ExperimentSpec } from '../spec/experiment.js';
import { UserError } from '../ui/errors.js';
import { formatBytes } from '../ui/format.js';
import { unanswered, type Backend, type BackendLogsOptions, type Capabilities, type Handle, type PollRequest, type PollResult, type Submission } from './backend.js';
import { StoredLogTail, storedLogText } from './log-text.js';

const BatchHandle = z.object({
  backend: z.literal('gcp-batch'),
  /** the `batch:` entry it was submitted through */
  entry: z.string(),
  /** the job's full name: projects/<p>/locations/<region>/jobs/<id> */
  job: z.string(),
  /** its task's index in the job's one task group */
  task: z.number().int().min(0),
  /** the unit's store name: the run id, or `<run_id>/shards/<i>` */
  unit: z.string(),
  attempt: z.union([z.number().int(), z.literal('predict')]),
});
type BatchHandle = z.infer<typeof BatchHandle>;

type Job = protos.google.cloud.batch.v1.IJob;
type Task = protos.google.cloud.batch.v1.ITask;

/** Calls made once a tick: a slow or failing API is an unanswered poll, never a stalled supervisor. */
const TICK_CALL = { timeout: 20_000, retry: null };
/**
 * Tasks asked for per listTasks call. Batch v1 documents no maximum for ListTasksRequest.page_size
 * (a server may return fewer and a next page token, which is followed): a job of up to this many
 * tasks is one call.
 */
const TASKS_PAGE = 5000;
/** Beyond a unit's grace: the task's script looks for a stop request every 5 s, and a tick or two to see it end. */
const STOP_SLACK_MS = 15_000;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

export interface GcpBatchOptions {
  /** the `batch:` entry's name */
  entry: string;
  config: Config;
  projectRoot: string;
  /** this machine's state folder: the Node runtime package is cached there */
  stateDir: string;
  /** the project's store: an s3:// store the tasks reach too */
  store: Store;
  runnerBundle: string;
  openClient: () => Promise<BatchServiceClient>;
}

export class GcpBatchBackend implements Backend {
  readonly name = 'gcp-batch' as const;
  readonly kind = 'scheduler' as const;
  readonly capabilities: Capabilities;
  readonly attemptsInProcess = false;
  readonly workersReachStore = true;
  private client: Promise<BatchServiceClient> | null = null;
  private artifacts: Promise<BatchArtifacts & { sent: number; bytes: number }> | null = null;
  /** per job, the tasks asked to stop */
  private readonly stopping = new Map<string, Set<number>>();
  /** per job, its deletion once every live task was asked */
  private readonly deleting = new Map<string, Promise<void>>();

  constructor(private readonly opts: GcpBatchOptions) {
    const entry = opts.config.batch[opts.entry]!;
    this.capabilities = { gpus: entry.accelerators.reduce((n, a) => n + a.count, 0), spot: entry.provisioning === 'spot', shards: true };
  }

  get title(): string {
    return `gcp-batch ${this.opts.entry}`;
  }

  private get entry() {
    return this.opts.config.batch[this.opts.entry]!;
  }

  private get parent(): string {
    return `projects/${this.entry.project}/locations/${this.entry.region}`;
  }

  private api(): Promise<BatchServiceClient> {
    if (!this.client) {
      this.client = this.opts.openClient();
      this.client.catch(() => (this.client = null));
    }
    return this.client;
  }

  /** One slot, the entry: at most `parallelism` units live at once (one job each time), else all. */
  slots() {
    return [{ name: this.opts.entry, capacity: this.entry.parallelism ?? Number.MAX_SAFE_INTEGER }];
  }

  /** Batch keeps its tasks running while the API does not answer: give it time before calling them lost. */
  lostAfterMs(): number {
    return 15 * 60 * 1000;
  }

  slotOf(handle: Handle): string {
    return BatchHandle.parse(handle).entry;
  }

  /** A spec the entry cannot run as it is, refused before a run opens: more tasks at once than it has. */
  checkSpec(file: string, spec: ExperimentSpec): void {
    const { parallelism } = this.entry;
    const tasks = spec.shards.count;
    if (parallelism !== undefined && parallelism > tasks) {
      throw new UserError(
        `${CONFIG_FILE}: batch.${this.opts.entry}.parallelism: ${parallelism} tasks at once, but ${file} runs ${tasks} (shards.count); lower parallelism to ${tasks} or leave it out (all tasks at once)`,
      );
    }
  }

  /** Opens the client (no credentials: one line, before anything is packed), then uploads what the tasks fetch, skipping what the store holds. */
  async prepare(slots: readonly string[], report?: (slot: string, outcome: string | Error, ms: number) => void): Promise<Map<string, Error | null>> {
    const started = Date.now();
    try {
      await this.api();
      const a = await this.upload();
      const what = a.sent ? `runtime, runner and project uploaded (${a.sent} objects, ${formatBytes(a.bytes)})` : 'runtime, runner and project already in the store';
      for (const s of slots) report?.(s, what, Date.now() - started);
      return new Map(slots.map((s) => [s, null]));
    } catch (err) {
      for (const s of slots) report?.(s, err as Error, Date.now() - started);
      return new Map(slots.map((s) => [s, err as Error]));
    }
  }

  /** The three objects every task fetches, each stored once under blobs/<sha256> (once per backend). */
  private upload(): Promise<BatchArtifacts & { sent: number; bytes: number }> {
    if (!this.artifacts) {
      this.artifacts = (async () => {
        const { projectRoot, stateDir, store } = this.opts;
        const [node, runner, code] = await Promise.all([
          nodeRuntimeTarball(stateDir, nodeArch(this.entry.machine_type)).then((f) => readFile(f)),
          loadRunnerBundle(this.opts.runnerBundle).then((b) => b.gz),
          packRepo(projectRoot, repoExcludes()).then(async (p) => {
            if (!p) throw new UserError(`gcp-batch: the project could not be packed (over 64 MB, or no GNU tar and rsync here); keep large data out of the repository`);
            return promisify(gzip)(p.archive);
          }),
        ]);
        let sent = 0;
        let bytes = 0;
        const put = async (data: Buffer): Promise<string> => {
          const sha = sha256Hex(data);
          if (!(await store.stat(blobKey(sha)))) {
            await store.putBytes(blobKey(sha), data);
            sent++;
            bytes += data.length;
          }
          return sha;
        };
        const [n, r, c] = await Promise.all([put(node), put(runner), put(code)]);
        return { node: n, runner: r, code: c, sent, bytes };
      })();
      this.artifacts.catch(() => (this.artifacts = null)); // a later call tries again
    }
    return this.artifacts;
  }

  /** One job for all of them; the same attempts again name the same job, which Batch refuses as existing. */
  async submitMany(subs: readonly Submission[]): Promise<Handle[]> {
    const units = subs.map((s) => s.spec);
    const artifacts = await this.upload();
    const job = renderBatchJob(units, batchTarget(this.opts.config, this.opts.entry, artifacts));
    const jobId = batchJobId(units);
    const client = await this.api();
    await client.createJob({ parent: this.parent, jobId, job }).catch((err: { code?: number }) => {
      if (err.code !== ALREADY_EXISTS) throw err;
    });
    return this.handles(units);
  }

  /** The job these attempts make, if it was made: one getJob by the ID they name. */
  async findSubmitted(subs: readonly Submission[]): Promise<(Handle | null)[]> {
    const units = subs.map((s) => s.spec);
    const name = this.jobName(units);
    const client = await this.api();
    const made = await client.getJob({ name }, TICK_CALL).then(
      () => true,
      (err: { code?: number; message?: string }) => {
        if (err.code === NOT_FOUND) return false;
        throw new UserError(`Batch: ${String(err.message).split('\n')[0]}`);
      },
    );
    return made ? this.handles(units) : units.map(() => null);
  }

  private jobName(units: readonly AttemptSpec[]): string {
    return `${this.parent}/jobs/${batchJobId(units)}`;
  }

  /** A job's attempts, one task each in the order submitted. */
  private handles(units: readonly AttemptSpec[]): BatchHandle[] {
    const job = this.jobName(units);
    return units.map((u, task) => ({ backend: 'gcp-batch', entry: this.opts.entry, job, task, unit: u.unit_id, attempt: u.attempt }));
  }

  /** Per job one listing of its tasks (one call up to TASKS_PAGE tasks), and getJob only when a task waits; then each attempt's files in the store. */
  async pollMany(reqs: readonly PollRequest[]): Promise<PollResult[]> {
    const handles = reqs.map((r) => BatchHandle.parse(r.handle));
    const byJob = new Map<string, Set<number>>();
    for (const h of handles) byJob.set(h.job, (byJob.get(h.job) ?? new Set()).add(h.task));
    const jobs = new Map([...byJob].map(([job, tasks]) => [job, this.jobStates(job, tasks)]));
    return Promise.all(
      handles.map(async (h, i) => {
        let states: TaskState[] | 'gone';
        try {
          states = (await jobs.get(h.job)!).states;
        } catch (err) {
          return unanswered(`Batch: ${(err as Error).message.split('\n')[0]}`);
        }
        const batch: TaskState =
          states === 'gone'
            ? { state: 'cancelled', reason: `its Batch job ${h.job.split('/').at(-1)} was deleted`, exit_code: null }
            : (states[h.task] ?? { state: 'lost', reason: `the Batch job has no task ${h.task}`, exit_code: null });
        return this.withRunnerReport(h, batch, reqs[i]!.eventsFrom);
      }),
    );
  }

  /**
   * The states of a job's tasks: from one listing while the tasks at `asked` are each running or
   * ended; the job is read too (getJob) when one waits, to say why, or is not listed yet, and
   * always without `asked`.
   */
  private async jobStates(name: string, asked?: Iterable<number>): Promise<{ states: TaskState[] | 'gone'; job: Job | null }> {
    const client = await this.api();
    const tasks: Task[] = [];
    let pageToken: string | undefined;
    try {
      do {
        const [page, next] = await client.listTasks({ parent: `${name}/taskGroups/group0`, pageSize: TASKS_PAGE, pageToken }, { ...TICK_CALL, autoPaginate: false });
        tasks.push(...page);
        pageToken = next?.pageToken || undefined;
      } while (pageToken);
      const job = asked && tasksTell(tasks, asked) ? null : (await client.getJob({ name }, TICK_CALL))[0];
      return { states: taskStates(job, tasks), job };
    } catch (err) {
      if ((err as { code?: number }).code === NOT_FOUND) return { states: 'gone', job: null };
      throw err;
    }
  }

  /**
   * What the runner stored: its events and newest metrics, and, once its task has ended, its own
   * final status (it tells a timeout or a cancel more exactly than an exit code). A runner that
   * wrote no status (its VM preempted or lost) ends as Batch says.
   */
  private async withRunnerReport(h: BatchHandle, batch: TaskState, eventsFrom: number): Promise<PollResult> {
    const base = { ...batch, events: [] as (RunnerEvent | null)[], metrics: null, last_line: null, unanswered: false };
    if (batch.state === 'pending') return base;
    const file = (name: string) => this.opts.store.getBytes(runKeys.attemptFile(h.unit, h.attempt, name)).then((b) => b?.toString('utf8') ?? '');
    let status: string, events: string, metrics: string;
    try {
      [status, events, metrics] = await Promise.all([file('status.json'), file(EVENTS_FILE), file('metrics.jsonl')]);
    } catch (err) {
      return unanswered(`store: ${(err as Error).message.split('\n')[0]}`);
    }
    const own = status ? (JSON.parse(status) as AttemptStatus) : null;
    const result: PollResult = { ...base, events: parseEventLines<RunnerEvent>(events).slice(eventsFrom), metrics: parseJsonLines<Record<string, unknown>>(metrics).at(-1) ?? null };
    if (TERMINAL.has(batch.state) && own && TERMINAL.has(own.state)) return { ...result, state: own.state, reason: own.reason, exit_code: own.exit_code };
    return result;
  }

  /**
   * Leaves the attempt's stop request in the store (its runner checkpoints and stops); once every
   * live task of the job has been asked, deletes the job when they have ended or their grace is
   * over (`force`: at once, killing them). Resolves when the job is deleted, or when it goes on
   * for other units.
   */
  async cancel(handle: Handle, opts: { force?: boolean } = {}): Promise<void> {
    const h = BatchHandle.parse(handle);
    // Also with `force`: a task beside others that go on can only be asked (its job stays).
    await this.opts.store.putBytes(runKeys.attemptFile(h.unit, h.attempt, STOP_REQUEST), '');
    const asked = this.stopping.get(h.job) ?? new Set<number>();
    asked.add(h.task);
    this.stopping.set(h.job, asked);
    const { states, job } = await this.jobStates(h.job);
    if (states === 'gone') return;
    const live = states.flatMap((s, i) => (TERMINAL.has(s.state) ? [] : [i]));
    if (!live.every((i) => asked.has(i))) return;
    if (!this.deleting.has(h.job)) {
      const deletion = this.deleteWhenStopped(h.job, live, opts.force ? 0 : graceMs(job));
      deletion.catch(() => this.deleting.delete(h.job)); // a later cancel tries again
      this.deleting.set(h.job, deletion);
    }
    await this.deleting.get(h.job);
  }

  /** Waits up to `graceMs` for the tasks at `live` to end (checking every 2 s), then deletes the job. */
  private async deleteWhenStopped(name: string, live: number[], graceMs: number): Promise<void> {
    const until = Date.now() + graceMs;
    while (Date.now() < until) {
      const { states } = await this.jobStates(name, live);
      if (states === 'gone') return;
      if (live.every((i) => TERMINAL.has(states[i]?.state ?? 'lost'))) break;
      await sleep(Math.min(2000, Math.max(0, until - Date.now())));
    }
    const client = await this.api();
    await client.deleteJob({ name }).catch((err: { code?: number }) => {
      if (err.code !== NOT_FOUND) throw err;
    });
  }

  /** The runner's copy of its output in the store (every 0.5 s while it runs), streamed; following polls the store. */
  async *logs(handle: Handle, opts: BackendLogsOptions): AsyncIterable<string> {
    const h = BatchHandle.parse(handle);
    const key = runKeys.attemptFile(h.unit, h.attempt, `${opts.stream ?? 'stdout'}.log`);
    if (!opts.follow) {
      yield* storedLogText(this.opts.store, key); // a chunk at a time, never the whole object in memory
      return;
    }
    // Each second only the bytes the runner added since the last read come from the store.
    const tail = new StoredLogTail(this.opts.store, key);
    for (;;) {
      if (opts.signal?.aborted) return;
      const [poll] = await this.pollMany([{ handle, eventsFrom: Number.MAX_SAFE_INTEGER }]);
      yield* tail.added();
      if (TERMINAL.has(poll!.state) && !poll!.unanswered) {
        const rest = tail.rest();
        if (rest) yield rest;
        return;
      }
      await sleepUnless(1000, opts.signal);
    }
  }

  /** Workers write the store themselves: nothing to bring home. */
  async pull(): Promise<void> {}

  async pushCheckpoints(): Promise<void> {}

  async reachable(): Promise<boolean> {
    try {
      const client = await this.api();
      await client.listJobs({ parent: this.parent, pageSize: 1 }, { ...TICK_CALL, autoPaginate: false });
      return true;
    } catch {
      return false;
    }
  }
}

/** How long a job's tasks get to checkpoint and stop: their grace (the job's attempt spec says it) and the slack of seeing it. */
function graceMs(job: Job | null): number {
  const spec = job?.taskGroups?.[0]?.taskSpec?.environment?.variables?.SWITCHYARD_SPEC;
  const grace = spec ? (JSON.parse(spec) as Partial<AttemptSpec>).grace_sec : undefined;
  return (grace ?? 60) * 1000 + STOP_SLACK_MS;
}
