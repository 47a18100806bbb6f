// SLURM: a scheduler. One `clusters:` entry of cluster_fleet_config.ts is its one slot; a
// submitMany is one sbatch job (an array for several units, slurm/render-sbatch.ts; several
// past the cluster's MaxArraySize), each submitted in one call on the cluster's login node
// (slurm/login-node.ts: an inventory host over the pooled ssh connection, or this machine). A
// poll is one round trip for every live job of the cluster: one sacct call (squeue --json where
// accounting is off, found out once), and each attempt's runner files (status, events, metrics,
// last line) from the shared filesystem, mapped to unit states by slurm/job-states.ts. A job
// SLURM requeues (a preemption, `scontrol requeue`) stays the same attempt: its runner starts
// again from the newest checkpoint. See docs/architecture.md, "SLURM".
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { ClusterEntry } from '../config/cluster-config.js';
import { parsePoll } from '../remote/launch.js';
import { TERMINAL, type AttemptSpec } from '../runner/attempt-spec.js';
import { sleepUnless } from '../sleep-unless.js';
import { parseSacct, parseSqueueJson, unitState, type SlurmJob } from '../slurm/job-states.js';
import { GatheredCalls } from '../slurm/gathered-calls.js';
import type { LoginNode } from '../slurm/login-node.js';
import { ATTEMPT_SPEC_FILE, attemptDirPath, jobName, renderSbatch, submissionName, type JobFolders, type JobPaths } from '../slurm/render-sbatch.js';
import {
  arraySizes,
  DEFAULT_MAX_ARRAY_SIZE,
  maxArrayTasks,
  slurmSubmitCall,
  SLURM_ARRAY_SIZE_SCRIPT,
  SLURM_CANCEL_SCRIPT,
  SLURM_FIND_SCRIPT,
  SLURM_KEEP_ARRAY_SIZE_SCRIPT,
  SLURM_KILL_SCRIPT,
  SLURM_POLL_SCRIPT,
  SLURM_SUBMIT_SCRIPT,
  underOneFolder,
} from '../slurm/scripts.js';
import { UserError } from '../ui/errors.js';
import { unanswered, type Backend, type BackendLogsOptions, type Capabilities, type Handle, type PollRequest, type PollResult, type Submission } from './backend.js';

const SlurmHandle = z.object({
  backend: z.literal('slurm'),
  cluster: z.string(),
  /** `123`, or `123_4` for task 4 of an array */
  job: z.string().regex(/^\d+(_\d+)?$/),
  /** the unit's store name: the run id, or `<run_id>/shards/<i>` */
  unit: z.string(),
  attempt: z.union([z.number().int(), z.literal('predict')]),
  /** the attempt's folder on the login node's filesystem */
  dir: z.string(),
  submitted_at: z.string(),
  grace_sec: z.number(),
});
type SlurmHandle = z.infer<typeof SlurmHandle>;

/** Polls after an unanswered one wait this long at first, doubling up to the most. */
const BACKOFF_MS = [2_000, 60_000] as const;

export interface SlurmBackendOptions {
  cluster: string;
  entry: ClusterEntry;
  login: LoginNode;
}

/** In a run's SLURM folder: the most units one job array of the run takes, as its first submit found it. */
const ARRAY_SIZE_FILE = 'array-size';

/** A recorded array size, which a damaged file makes a one-line error, never a guess. */
function keptCount(cluster: string, file: string, line: string | undefined): number {
  const n = Number(line);
  if (!/^\d+$/.test(line ?? '') || n < 1) throw new UserError(`slurm ${cluster}: ${file} holds ${JSON.stringify(line ?? '')}, not the run's array size; delete it to ask the cluster again`);
  return n;
}

/** The most of a log one call to the login node reads. */
const LOG_SLICE_BYTES = 4 << 20;

/**
 * A slice of a log as the login node sent it, and whether it filled LOG_SLICE_BYTES (more may
 * follow). A full slice may end inside a character, which decodes as something else: it is cut
 * after its last newline, so the bytes counted are the bytes read (a slice with none is kept).
 */
function logSlice(stdout: string): { text: string; full: boolean } {
  const full = Buffer.byteLength(stdout) >= LOG_SLICE_BYTES;
  const end = full ? stdout.lastIndexOf('\n') + 1 : 0;
  return { text: end > 0 ? stdout.slice(0, end) : stdout, full };
}

export class SlurmBackend implements Backend {
  readonly name = 'slurm' as const;
  readonly kind = 'scheduler' as const;
  readonly capabilities: Capabilities;
  readonly attemptsInProcess = false;
  readonly workersReachStore: boolean;
  /** `auto` tries sacct first; `squeue` once sacct said accounting is off here */
  private mode: 'auto' | 'squeue' = 'auto';
  private backoff = { until: 0, ms: 0, why: '' };
  /** the most units one job array of each run takes, asked once a run */
  private readonly arrayTasks = new Map<string, Promise<number>>();
  /** stops and cancels asked in one turn: one call */
  private readonly gathered: GatheredCalls;

  constructor(private readonly opts: SlurmBackendOptions) {
    this.capabilities = { gpus: opts.entry.gpus, spot: opts.entry.preemptible, shards: true };
    this.workersReachStore = opts.login.workersReachStore;
    this.gathered = new GatheredCalls(opts.login);
  }

  get title(): string {
    return `slurm ${this.opts.cluster}`;
  }

  slots() {
    return [{ name: this.opts.cluster, capacity: this.opts.entry.max_jobs ?? Number.MAX_SAFE_INTEGER }];
  }

  lostAfterMs(): number {
    return this.opts.entry.lost_after_sec * 1000;
  }

  slotOf(handle: Handle): string {
    return SlurmHandle.parse(handle).cluster;
  }

  async prepare(slots: readonly string[], report?: (slot: string, outcome: string | Error, ms: number) => void): Promise<Map<string, Error | null>> {
    const started = Date.now();
    const outcome = await this.opts.login.prepare().then(
      (p) => `login ${this.opts.login.name}: ${p.detail}`,
      (err: Error) => err,
    );
    for (const s of slots) report?.(s, outcome, Date.now() - started);
    return new Map(slots.map((s) => [s, outcome instanceof Error ? outcome : null]));
  }

  /**
   * One job array for up to the cluster's MaxArraySize units (one job for one unit), and no more
   * than one submit call can name (arraySizes), so more units make several arrays, each
   * submitted in one call. The same attempts again find the job id kept for them. A submission
   * that fails fails its own units only: those of the arrays before it run.
   */
  async submitMany(subs: readonly Submission[]): Promise<(Handle | Error)[]> {
    const units = subs.map((s) => s.spec);
    const { paths } = await this.opts.login.prepare();
    const out: (Handle | Error)[] = [];
    for (const array of await this.arrays(units, paths, 'so they wait for it', true)) {
      out.push(...(await this.submitArray(array, paths).catch((err: Error) => array.map(() => err))));
    }
    return out;
  }

  /**
   * The jobs submitMany would have made of these attempts, cut into the same arrays under the
   * same names, found as its submit script would find them (slurm/scripts.ts, SLURM_FIND_SCRIPT):
   * by the job id kept for each array, else by the job's name. One call for every array, which
   * submits and writes nothing; an array not found is null for each of its units.
   */
  async findSubmitted(subs: readonly Submission[]): Promise<(Handle | null)[]> {
    if (!subs.length) return [];
    const { login, cluster } = this.opts;
    const units = subs.map((s) => s.spec);
    const paths = login.folders(); // a look prepares nothing: no project synced, no runner sent
    const arrays = await this.arrays(units, paths, 'so they cannot be looked for');
    const args = arrays.flatMap((array) => [`${paths.logs(array[0]!.run_id)}/${submissionName(array)}.jobid`, jobName(array)]);
    const r = await login.sh(SLURM_FIND_SCRIPT, args, { allowFail: true, timeoutMs: 60_000 }).catch((err: Error) => err);
    if (r instanceof Error || r.code !== 0) {
      const why = r instanceof Error ? r.message.split('\n')[0] : `exit ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').at(-1)}`;
      throw new UserError(`slurm ${cluster}: ${r instanceof Error ? `login ${login.name}` : 'squeue'} did not answer (${why}); the jobs these attempts may have started cannot be looked for`);
    }
    const ids = r.stdout.split('\n').slice(0, arrays.length);
    if (ids.length < arrays.length || !ids.every((id) => /^(\d+|-)$/.test(id))) {
      throw new UserError(`slurm ${cluster}: the search for submitted jobs answered ${JSON.stringify(r.stdout.slice(0, 200))}, not a job id or "-" for each job array`);
    }
    const submitted_at = new Date().toISOString();
    return arrays.flatMap((array, i) => (ids[i] === '-' ? array.map(() => null) : this.handles(array, paths, ids[i]!, submitted_at)));
  }

  /**
   * The job arrays submitMany cuts units into, in order (see there). `unasked` ends the error
   * when the run's MaxArraySize is needed and cannot be had: what that means for the units.
   * A submit records the run's (`keep`); a look records nothing.
   */
  private async arrays(units: readonly AttemptSpec[], paths: JobFolders, unasked: string, keep = false): Promise<AttemptSpec[][]> {
    let most = 1;
    if (units.length > 1) {
      const run = units[0]!.run_id;
      let asked = this.arrayTasks.get(run);
      if (!asked) this.arrayTasks.set(run, (asked = this.askArrayTasks(`${paths.logs(run)}/${ARRAY_SIZE_FILE}`, keep)));
      most = await asked.catch((err: Error) => {
        this.arrayTasks.delete(run);
        throw new UserError(`${err.message}; several units need the cluster's MaxArraySize to be cut into job arrays, ${unasked}`);
      });
    }
    const folders = units.map((u) => attemptDirPath(paths, u.unit_id, u.attempt));
    let from = 0;
    return arraySizes(units.length ? paths.logs(units[0]!.run_id) : '', folders, most).map((size) => units.slice(from, (from += size)));
  }

  /**
   * The most units a job array of the run takes: as its first submit recorded it (`file`), else
   * MaxArraySize as the cluster's `scontrol show config` says (SLURM's default where it does not
   * say), recorded now when `keep`. The split names the jobs: a resubmit of the same attempts
   * that cut them otherwise (an admin changed MaxArraySize meanwhile, or scontrol answered
   * another time than it did then) would send them in new arrays, under new names, and start
   * them twice. So a call that fails fails the submit, and is asked again at the next.
   */
  private async askArrayTasks(file: string, keep: boolean): Promise<number> {
    const { cluster } = this.opts;
    const out = await this.answer(SLURM_ARRAY_SIZE_SCRIPT, [file], (why) => `slurm ${cluster}: \`scontrol show config\` did not answer (${why})`);
    const [first, recorded] = out.split('\n');
    if (first === 'recorded') return keptCount(cluster, file, recorded);
    const tasks = maxArrayTasks(out) ?? DEFAULT_MAX_ARRAY_SIZE;
    if (!keep) return tasks;
    const kept = await this.answer(SLURM_KEEP_ARRAY_SIZE_SCRIPT, [file, String(tasks)], (why) => `slurm ${cluster}: cannot record the run's MaxArraySize in ${file} (${why})`);
    return keptCount(cluster, file, kept.split('\n')[0]);
  }

  /** The login node's output of `script`; a call that fails or exits non-zero is `refusal` of its first line of why. */
  private async answer(script: string, args: string[], refusal: (why: string) => string): Promise<string> {
    const r = await this.opts.login.sh(script, args, { allowFail: true }).catch((err: Error) => err);
    if (r instanceof Error || r.code !== 0) {
      const why = r instanceof Error ? r.message : `exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`;
      throw new UserError(refusal(why.split('\n')[0]!));
    }
    return r.stdout;
  }

  private async submitArray(units: readonly AttemptSpec[], paths: JobPaths): Promise<SlurmHandle[]> {
    const { login, cluster, entry } = this.opts;
    const logs = paths.logs(units[0]!.run_id);
    const name = submissionName(units);
    const call = slurmSubmitCall({
      sbatchFile: `${logs}/${name}.sbatch`,
      jobIdFile: `${logs}/${name}.jobid`,
      logs,
      jobName: jobName(units),
      script: renderSbatch(units, { name: cluster, entry, paths }),
      specFile: ATTEMPT_SPEC_FILE,
      attempts: units.map((u) => ({ dir: attemptDirPath(paths, u.unit_id, u.attempt), spec: JSON.stringify(login.workerSpec(u)) })),
    });
    const r = await login.sh(SLURM_SUBMIT_SCRIPT, call.args, { stdin: call.stdin, allowFail: true });
    const id = r.stdout.trim().split('\n').at(-1) ?? '';
    if (r.code !== 0 || !/^\d+$/.test(id)) {
      const why = (r.stderr.trim() || r.stdout.trim()).split('\n').at(-1) ?? '';
      const what = { 12: 'sbatch refused the job', 13: 'squeue did not answer, so a job of these attempts could not be looked for before submitting', 127: `no sbatch on login ${login.name}` }[r.code] ?? `submit exited ${r.code}`;
      throw new UserError(`slurm ${cluster}: ${what}${why ? `: ${why}` : ''}`);
    }
    return this.handles(units, paths, id, new Date().toISOString());
  }

  /** The handles of one job's units: task i of an array of several, the job itself for one. */
  private handles(units: readonly AttemptSpec[], paths: JobFolders, id: string, submitted_at: string): SlurmHandle[] {
    return units.map((u, i): SlurmHandle => ({
      backend: 'slurm',
      cluster: this.opts.cluster,
      job: units.length > 1 ? `${id}_${i}` : id,
      unit: u.unit_id,
      attempt: u.attempt,
      dir: attemptDirPath(paths, u.unit_id, u.attempt),
      submitted_at,
      grace_sec: u.grace_sec,
    }));
  }

  /** One round trip for every job asked about: one scheduler query, then each attempt's files. */
  async pollMany(reqs: readonly PollRequest[]): Promise<PollResult[]> {
    if (Date.now() < this.backoff.until) return reqs.map(() => unanswered(this.backoff.why));
    const handles = reqs.map((r) => SlurmHandle.parse(r.handle));
    const marker = `--switchyard-${randomBytes(8).toString('hex')}--`;
    const ids = [...new Set(handles.map((h) => h.job))].join(',');
    const { base, rel } = underOneFolder(handles.map((h) => h.dir));
    const args = [marker, this.mode, ids, base, ...handles.flatMap((h, i) => [rel[i]!, String(reqs[i]!.eventsFrom), h.job])];
    let jobs: Map<string, SlurmJob>;
    let rest: string;
    try {
      const out = (await this.opts.login.sh(SLURM_POLL_SCRIPT, args, { timeoutMs: 60_000 })).stdout;
      const cut = out.indexOf(marker);
      if (cut < 0) throw new Error('the poll was cut short');
      jobs = this.schedulerAnswer(out.slice(0, cut));
      rest = out.slice(cut + marker.length);
    } catch (err) {
      const why = `slurm ${this.opts.cluster}: ${(err as Error).message.split('\n')[0]}`;
      this.backoff = { ms: Math.min(BACKOFF_MS[1], Math.max(BACKOFF_MS[0], this.backoff.ms * 2)), until: 0, why };
      this.backoff.until = Date.now() + this.backoff.ms;
      return reqs.map(() => unanswered(why));
    }
    this.backoff = { until: 0, ms: 0, why: '' };
    const now = Date.now();
    return parsePoll(rest, marker, handles.length).map((a, i): PollResult => {
      const h = handles[i]!;
      const job = jobs.get(h.job);
      const s = unitState(job, a.status, { jobId: h.job, sinceSubmitMs: now - Date.parse(h.submitted_at) });
      const over = job && !TERMINAL.has(s.state) ? this.pastRequeueBudget(h, job) : null;
      return { ...(over ?? s), events: a.events, metrics: a.metrics, last_line: a.lastLine, unanswered: false };
    });
  }

  /**
   * SLURM requeues a preempted job by itself, as the same attempt, without end: past
   * `max_requeues` the job is cancelled and ends as preempted, so the supervisor's attempt
   * budget bounds the unit (its next attempt resumes from the newest checkpoint).
   */
  private pastRequeueBudget(h: SlurmHandle, job: SlurmJob): Pick<PollResult, 'state' | 'reason' | 'exit_code'> | null {
    const max = this.opts.entry.max_requeues;
    if (job.restarts <= max) return null;
    void this.gathered.call(SLURM_KILL_SCRIPT, [], [h.job]).catch(() => {});
    return { state: 'preempted', reason: `requeued by SLURM ${job.restarts} times, past clusters.${this.opts.cluster}.max_requeues (${max}): job ${h.job} cancelled`, exit_code: null };
  }

  /** What sacct or squeue said; throws when neither answered (a cluster that does not answer). */
  private schedulerAnswer(text: string): Map<string, SlurmJob> {
    const lines = text.split('\n');
    if (lines[0]?.startsWith('sacct-error ')) {
      // Accounting off is a property of the cluster: ask squeue from now on. Anything else may pass.
      if (/accounting storage is disabled/i.test(lines[0])) this.mode = 'squeue';
      lines.shift();
    }
    const [kind, ...body] = lines;
    const answer = body.join('\n');
    if (kind === 'sacct') return parseSacct(answer);
    if (!answer.trimStart().startsWith('{')) throw new Error(`squeue: ${answer.trim().split('\n')[0] ?? 'no answer'}`);
    return parseSqueueJson(answer);
  }

  /**
   * A stop: the stop request, then USR1 to the runner (`scancel --signal=USR1 --batch`), which
   * checkpoints and exits; after its grace, `scancel` ends whatever is left. `force`: scancel now.
   */
  async cancel(handle: Handle, opts: { force?: boolean; preempt?: boolean } = {}): Promise<void> {
    const h = SlurmHandle.parse(handle);
    const how = opts.force ? 'kill' : opts.preempt ? 'preempt' : 'stop';
    await this.gathered.call(SLURM_CANCEL_SCRIPT, [how], [h.dir, h.job]);
    if (how === 'kill') return;
    setTimeout(() => void this.gathered.call(SLURM_KILL_SCRIPT, [], [h.job]).catch(() => {}), (h.grace_sec + 10) * 1000).unref();
  }

  /**
   * The runner's copy of the experiment's output on the shared filesystem, read a slice at a
   * time (a login node call answers whole, so a slice bounds what one holds); following reads
   * what was added each second.
   */
  async *logs(handle: Handle, opts: BackendLogsOptions): AsyncIterable<string> {
    const h = SlurmHandle.parse(handle);
    const file = `${h.dir}/${opts.stream ?? 'stdout'}.log`;
    let offset = 0;
    for (;;) {
      if (opts.signal?.aborted) return;
      const [poll] = opts.follow ? await this.pollMany([{ handle, eventsFrom: Number.MAX_SAFE_INTEGER }]) : [null];
      for (let full = true; full && !opts.signal?.aborted; ) {
        const r = await this.opts.login.sh('tail -c +"$1" "$2" 2>/dev/null | head -c "$3"; exit 0', [String(offset + 1), file, String(LOG_SLICE_BYTES)]);
        const slice = logSlice(r.stdout);
        full = slice.full;
        if (slice.text) {
          yield slice.text;
          offset += Buffer.byteLength(slice.text);
        }
      }
      if (!poll || (TERMINAL.has(poll.state) && !poll.unanswered)) return;
      await sleepUnless(1000, opts.signal);
    }
  }

  pull(handle: Handle): Promise<void> {
    return this.opts.login.pull(SlurmHandle.parse(handle).unit);
  }

  pushCheckpoints(_slot: string, unit: string): Promise<void> {
    return this.opts.login.pushCheckpoints(unit);
  }

  /** The login node answers, has sbatch, and the controller answers it (sinfo). */
  async reachable(): Promise<boolean> {
    try {
      return (await this.opts.login.sh('command -v sbatch >/dev/null && sinfo -h -o %a >/dev/null', [], { allowFail: true, timeoutMs: 20_000 })).code === 0;
    } catch {
      return false;
    }
  }
}
