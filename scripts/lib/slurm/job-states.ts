// What SLURM says of a submission's jobs, as unit states. Pure: the text `sacct -X -D -P -n
// --array -o JobID,State,ExitCode,Restarts,Elapsed,NodeList,Reason` prints on a cluster with
// accounting, or `squeue --json --states=all` where accounting is off, parsed into one record
// per job or array task (`123`, `123_4`), then mapped. A state is read by its first word
// (`CANCELLED by 1000`, `RUNNING+`); with -D a requeued job has one row per start, the last
// one current.
import type { AttemptState, AttemptStatus } from '../runner/attempt-spec.js';
import { TERMINAL } from '../runner/attempt-spec.js';

export interface SlurmJob {
  /** `123`, or `123_4` for task 4 of array job 123 */
  id: string;
  /** the state's first word: PENDING, RUNNING, COMPLETED, CANCELLED, ... */
  state: string;
  /** the rest of the state (`by 1000` of `CANCELLED by 1000`), or null */
  detail: string | null;
  /** why it waits (Priority, Resources, ...), or null */
  reason: string | null;
  exit_code: number | null;
  signal: number | null;
  /** times SLURM requeued it */
  restarts: number;
  node: string | null;
}

export interface JobState {
  state: AttemptState;
  reason: string | null;
  exit_code: number | null;
}

/** Array task ids of `123_[0-3,5%2]` (a pending array's collapsed row): 0, 1, 2, 3, 5. */
export function expandTasks(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.replace(/%\d+$/, '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const [lo, hi, step] = [Number(m[1]), Number(m[2] ?? m[1]), Number(m[3] ?? 1)];
    for (let i = lo; i <= hi && out.length < 100_000; i += step) out.push(i);
  }
  return out;
}

/** `123_[0-3%2]` → ids of each task; `123_4` and `123` as they are. */
function idsOf(jobId: string): string[] {
  const m = /^(\d+)_\[(.+)\]$/.exec(jobId);
  return m ? expandTasks(m[2]!).map((t) => `${m[1]}_${t}`) : [jobId];
}

function splitState(text: string): { state: string; detail: string | null } {
  const [first = '', ...rest] = text.trim().split(/\s+/);
  return { state: first.replace(/\+$/, '').toUpperCase(), detail: rest.length ? rest.join(' ') : null };
}

const orNull = (s: string | undefined) => (s && s !== 'None' && s !== '(null)' ? s : null);

/** sacct -P -n rows of JobID|State|ExitCode|Restarts|Elapsed|NodeList|Reason; the last row of an id wins. */
export function parseSacct(text: string): Map<string, SlurmJob> {
  const jobs = new Map<string, SlurmJob>();
  for (const line of text.split('\n')) {
    const cols = line.split('|');
    if (cols.length < 7 || !/^\d/.test(cols[0]!)) continue;
    const [jobId, stateText, exit, restarts, , node, reason] = cols as [string, string, string, string, string, string, string];
    const [code, sig] = exit.split(':').map((x) => (x === '' ? null : Number(x)));
    for (const id of idsOf(jobId)) {
      jobs.set(id, { id, ...splitState(stateText), reason: orNull(reason), exit_code: code ?? null, signal: sig ?? null, restarts: Number(restarts) || 0, node: orNull(node) });
    }
  }
  return jobs;
}

/** squeue's numbers are plain, or `{ set, number }` objects in newer versions. */
const num = (v: unknown): number | null => {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'number' in v && (v as { set?: boolean }).set !== false) return Number((v as { number: unknown }).number);
  return null;
};

interface SqueueJob {
  job_id?: unknown;
  array_job_id?: unknown;
  array_task_id?: unknown;
  array_task_string?: string;
  job_state?: string | string[];
  state_reason?: string;
  exit_code?: unknown;
  restart_cnt?: unknown;
  nodes?: string;
}

/**
 * `squeue --json --states=all`: every job SLURM still holds in memory. An answer that is not
 * such a listing throws, as a cluster that did not answer: squeue exits 0 with an empty `jobs`
 * and its `errors` when the controller is down, which must not read as every job gone.
 */
export function parseSqueueJson(text: string): Map<string, SlurmJob> {
  const jobs = new Map<string, SlurmJob>();
  let parsed: { jobs?: SqueueJob[]; errors?: { error?: string; description?: string }[] };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new Error('squeue: its answer is damaged (not JSON)');
  }
  const error = parsed.errors?.[0];
  if (error) throw new Error(`squeue: ${error.error ?? 'error'}${error.description ? ` (${error.description})` : ''}`);
  if (!Array.isArray(parsed.jobs)) throw new Error('squeue: its answer has no list of jobs');
  for (const j of parsed.jobs) {
    const stateText = Array.isArray(j.job_state) ? j.job_state.join(' ') : (j.job_state ?? '');
    const exit = j.exit_code;
    // 22.05 gives the wait status as a number; newer versions { return_code, signal: { signal_id } }.
    const [code, sig] =
      typeof exit === 'number'
        ? [(exit >> 8) & 0xff, exit & 0x7f]
        : exit && typeof exit === 'object'
          ? [num((exit as { return_code?: unknown }).return_code), num((exit as { signal?: { signal_id?: unknown } }).signal?.signal_id)]
          : [null, null];
    const arrayJob = num(j.array_job_id);
    const task = num(j.array_task_id);
    const ids = !arrayJob ? [String(num(j.job_id))] : task !== null ? [`${arrayJob}_${task}`] : expandTasks(j.array_task_string ?? '').map((t) => `${arrayJob}_${t}`);
    for (const id of ids) {
      jobs.set(id, { id, ...splitState(stateText), reason: orNull(j.state_reason), exit_code: code, signal: sig || null, restarts: num(j.restart_cnt) ?? 0, node: orNull(j.nodes) });
    }
  }
  return jobs;
}

const WAITING: Record<string, string> = {
  Priority: 'queued behind jobs of higher priority',
  Resources: 'waiting for resources',
  Dependency: 'waiting for a dependency',
  BeginTime: 'waiting for its start time',
  JobArrayTaskLimit: 'waiting: the array runs max_jobs tasks at once',
  QOSMaxJobsPerUserLimit: "waiting: the QOS's job limit per user",
  AssocGrpCpuLimit: "waiting: the account's CPU limit",
  ReqNodeNotAvail: 'waiting: the nodes it needs are not available',
  PartitionTimeLimit: "it asks for more time than the partition allows (it will not start)",
  launch_failed_requeued_held: 'held after a failed launch',
};

/** A live job's state: pending with why, or running. Null when the job has ended. */
function liveState(job: SlurmJob): JobState | null {
  const requeued = job.restarts > 0 ? `requeued by SLURM (restart ${job.restarts}); ` : '';
  switch (job.state) {
    case 'RUNNING':
    case 'COMPLETING':
    case 'SIGNALING':
    case 'STAGE_OUT':
      return { state: 'running', reason: null, exit_code: null };
    case 'PENDING': {
      const why = job.reason ? `${WAITING[job.reason] ?? 'pending'} (${job.reason})` : 'pending';
      return { state: 'pending', reason: `${requeued}${why}`, exit_code: null };
    }
    case 'REQUEUED':
    case 'REQUEUE_FED':
    case 'REQUEUE_HOLD':
    case 'RESV_DEL_HOLD':
      return { state: 'pending', reason: `requeued by SLURM (restart ${job.restarts || 1})${job.state.endsWith('HOLD') ? ', held' : ''}`, exit_code: null };
    case 'CONFIGURING':
    case 'RESIZING':
    case 'POWER_UP_NODE':
      return { state: 'pending', reason: `${requeued}its node is being set up (${job.state})`, exit_code: null };
    case 'SUSPENDED':
    case 'STOPPED':
      return { state: 'pending', reason: `${requeued}suspended by SLURM (${job.state})`, exit_code: null };
    default:
      return null;
  }
}

/** How an ended job ended, by SLURM alone. */
function endedState(job: SlurmJob): JobState {
  const exit = job.exit_code;
  switch (job.state) {
    case 'COMPLETED':
      return { state: 'succeeded', reason: null, exit_code: 0 };
    case 'PREEMPTED':
      return { state: 'preempted', reason: `preempted by SLURM${job.node ? ` on ${job.node}` : ''}`, exit_code: exit };
    case 'NODE_FAIL':
      return { state: 'lost', reason: `its node failed (NODE_FAIL${job.node ? ` on ${job.node}` : ''})`, exit_code: exit };
    case 'BOOT_FAIL':
      return { state: 'lost', reason: `its node failed to boot (BOOT_FAIL${job.node ? ` on ${job.node}` : ''})`, exit_code: exit };
    case 'TIMEOUT':
      return { state: 'timeout', reason: "it ran past the SLURM job's time limit (TIMEOUT)", exit_code: exit };
    case 'DEADLINE':
      return { state: 'timeout', reason: 'it reached its deadline (DEADLINE)', exit_code: exit };
    case 'OUT_OF_MEMORY':
      return { state: 'failed', reason: 'out of memory (OUT_OF_MEMORY): raise mem in the cluster entry', exit_code: exit };
    case 'CANCELLED':
      return { state: 'cancelled', reason: `cancelled in SLURM${job.detail ? ` ${job.detail}` : ''}`, exit_code: exit };
    case 'REVOKED':
      return { state: 'cancelled', reason: 'revoked by SLURM (REVOKED)', exit_code: exit };
    default:
      return { state: 'failed', reason: `${job.state}${exit !== null ? `, exit ${exit}${job.signal ? ` (signal ${job.signal})` : ''}` : ''}`, exit_code: exit };
  }
}

/** SLURM's own answer, where it tells more than the runner can (the runner was killed, or never ran). */
const SLURM_DECIDES = new Set(['TIMEOUT', 'DEADLINE', 'OUT_OF_MEMORY', 'NODE_FAIL', 'BOOT_FAIL', 'PREEMPTED', 'CANCELLED', 'REVOKED']);

/** How long a job SLURM does not list yet is taken for just submitted (accounting may lag behind sbatch). */
export const UNLISTED_GRACE_MS = 60_000;

/**
 * A unit's state from its job and its runner's status.json (from the latest start of the job):
 * while SLURM has the job live, SLURM's state (a status of an earlier start of a requeued job
 * says nothing); once it ended, the runner's own final status where it wrote one (it tells a
 * timeout it kept, a stop, a preemption it checkpointed for), unless SLURM's state says what
 * the runner cannot (its time limit, memory or node); a job SLURM no longer lists ends as its
 * runner says, else lost.
 */
export function unitState(job: SlurmJob | undefined, runner: AttemptStatus | null, opts: { jobId: string; sinceSubmitMs: number }): JobState {
  const own = runner && TERMINAL.has(runner.state) ? { state: runner.state, reason: runner.reason, exit_code: runner.exit_code } : null;
  if (!job) {
    if (own) return own;
    if (opts.sinceSubmitMs < UNLISTED_GRACE_MS) return { state: 'pending', reason: `submitted as job ${opts.jobId}; SLURM does not list it yet`, exit_code: null };
    return { state: 'lost', reason: `SLURM no longer lists job ${opts.jobId} and its runner wrote no final status`, exit_code: null };
  }
  const live = liveState(job);
  if (live) return live;
  if (own && (own.state === 'succeeded' || !SLURM_DECIDES.has(job.state))) return own;
  return endedState(job);
}
