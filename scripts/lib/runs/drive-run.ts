// The orchestrator's attempt loop: submit an attempt, follow it to its end while writing the
// ledger and the run record, and start the next attempt after a preemption or a lost worker,
// resuming from the latest committed checkpoint. Cross-cutting work lives here, once, around
// whatever backend runs the attempt.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, PollResult } from '../backends/backend.js';
import type { Project } from '../project.js';
import type { AttemptSpec, RunnerEvent } from '../runner/attempt-spec.js';
import { formatDuration, type StatusLine } from '../ui/status-line.js';
import { shardUnit, startedAttempt, TERMINAL, type AttemptRecord, type AttemptState, type Handle, type RunRecord } from './run-record.js';
import { claimUnit } from '../runner/attempt-fence.js';
import { lostSteps, storedEvents } from './lost-steps.js';
import { recordInLedger, saveRun } from './run-store.js';

const POLL_MS = 250;

/** `shard`: one shard of a fleet search; without it the attempt covers the whole search. */
export function attemptSpec(project: Project, run: RunRecord, attempt: number | 'predict', shard?: { index: number; count: number }): AttemptSpec {
  const { spec } = run;
  const [slug] = run.experiment.split('/');
  const competition = path.join('competitions', slug!);
  return {
    run_id: run.run_id,
    unit_id: shard ? shardUnit(run.run_id, shard.index) : run.run_id,
    pins_digest: run.pins.digest,
    attempt,
    command: attempt === 'predict' ? run.command.predict! : run.command.train,
    setup: spec.setup ?? null,
    cwd: competition,
    data_dir: spec.data ? path.relative(project.root, path.resolve(project.root, competition, spec.data.dir)) : null,
    env: spec.train.env,
    secrets: spec.secrets,
    secrets_file: '.env',
    venv: null,
    seed: run.pins.seed,
    ckpt_every_sec: spec.train.checkpoint_every_sec,
    grace_sec: spec.train.grace_sec,
    keep_checkpoints: spec.train.keep_checkpoints,
    shard_index: shard?.index ?? 0,
    shard_count: shard?.count ?? 1,
    store: project.store.url,
    store_s3: project.config.defaults.s3 ?? null,
  };
}

/**
 * Ledger entries and user-facing lines for the runner's events. `shard` tags the entries of one
 * shard of a fleet search (its steps are its own) and prefixes its lines.
 */
export async function recordEvents(
  project: Project,
  run: RunRecord,
  events: RunnerEvent[],
  say: (line: string) => void,
  shard?: number,
): Promise<void> {
  const tag = shard === undefined ? {} : { shard };
  const prefix = shard === undefined ? '' : `shard ${shard}: `;
  for (const e of events) {
    if (e.type === 'ckpt.committed') {
      await recordInLedger(project, 'ckpt.committed', { run_id: run.run_id, ...tag, step: e.step, manifest: e.manifest, manifest_sha256: e.manifest_sha256 });
    } else if (e.type === 'ckpt.pruned') {
      await recordInLedger(project, 'ckpt.pruned', { run_id: run.run_id, ...tag, step: e.step });
    } else if (e.type === 'outputs.saved') {
      await recordInLedger(project, 'outputs.saved', { run_id: run.run_id, ...tag, files: e.files });
    } else if (e.type === 'restored') {
      say(prefix + (e.step === null ? 'starting from scratch (no committed checkpoint)' : `resuming from committed checkpoint step ${e.step}`));
    } else if (e.type === 'notice') {
      say(`${prefix}switchyard: ${e.line}`);
    }
  }
}

/**
 * Writes an attempt's end into its record, brings its results home and records it in the
 * ledger. Bringing results home can fail with the worker gone; the end is recorded anyway.
 */
export async function recordAttemptEnd(
  project: Project,
  run: RunRecord,
  attempt: AttemptRecord,
  poll: PollResult,
  pull: () => Promise<void>,
  say: (line: string) => void,
  shard?: number,
): Promise<void> {
  Object.assign(attempt, {
    state: poll.state,
    reason: poll.reason,
    exit_code: poll.exit_code,
    ended_at: new Date().toISOString(),
    last_step: poll.last_step ?? attempt.last_step,
    restored_step: poll.restored_step ?? attempt.restored_step,
  });
  const who = shard === undefined ? `attempt ${attempt.n}` : `shard ${shard} attempt ${attempt.n}`;
  await pull().catch((err: Error) => say(`switchyard: could not pull ${who}: ${err.message}`));
  await settleLostSteps(project, run, attempt, say, shard);
  await saveRun(project, run);
  await recordInLedger(project, 'attempt.ended', {
    run_id: run.run_id,
    ...(shard === undefined ? {} : { shard }),
    attempt: attempt.n,
    state: attempt.state,
    exit_code: attempt.exit_code,
    last_step: attempt.last_step,
  });
}

/**
 * When an attempt ends lost, its worker may still be running: the unit is claimed for the next
 * attempt (a runner still alive stops writing to the store), then the ledger gets what its
 * runner recorded in the store but no poll delivered (a prune just before its host went away).
 * At every end of a unit that has lost attempts, each step the ledger has live from them that
 * the store does not hold is recorded as `ckpt.lost`, so make verify expects only what exists.
 */
async function settleLostSteps(project: Project, run: RunRecord, attempt: AttemptRecord, say: (line: string) => void, shard?: number): Promise<void> {
  const unit = shard === undefined ? run.run_id : shardUnit(run.run_id, shard);
  if (attempt.state === 'lost') {
    await claimUnit(project.store, unit, attempt.n + 1);
    const events = await storedEvents(project, unit, attempt.n);
    if (events.length > attempt.events_seen) {
      await recordEvents(project, run, events.slice(attempt.events_seen).filter((e) => e.type !== 'notice' && e.type !== 'restored'), say, shard);
      attempt.events_seen = events.length;
    }
  }
  const lost = new Map((shard === undefined ? run.attempts : run.shards![shard]!.attempts).filter((a) => a.state === 'lost').map((a) => [a.n, a]));
  if (!lost.size) return;
  for (const s of await lostSteps(project, run.run_id, unit, new Set(lost.keys()))) {
    const a = lost.get(s.attempt!)!;
    const host = typeof a.handle?.host === 'string' ? a.handle.host : a.backend;
    await recordInLedger(project, 'ckpt.lost', { run_id: run.run_id, ...(shard === undefined ? {} : { shard }), step: s.step, host, attempt: a.n });
  }
}

function statusText(attempt: AttemptRecord, poll: PollResult, startedMs: number): string {
  const m = poll.metrics ?? {};
  const step = m.step ?? poll.last_step ?? '-';
  const loss = typeof m.loss === 'number' ? m.loss.toPrecision(4) : '-';
  return `▸ attempt ${attempt.n} · step ${step} · loss ${loss} · ckpt ${poll.last_step ?? '-'} · ${formatDuration(Date.now() - startedMs)}`;
}

/**
 * Polls a handle until its attempt ends, writing the ledger for events past `seen` (the
 * number already handled, so a re-attached orchestrator never records one twice).
 */
export async function pollUntilDone(
  project: Project,
  backend: Backend,
  run: RunRecord,
  handle: Handle,
  ui: StatusLine,
  status: (poll: PollResult) => string,
  seen = { count: 0 },
  onHandled: (poll: PollResult) => Promise<void> = async () => {},
): Promise<PollResult> {
  for (;;) {
    const poll = await backend.poll(handle);
    if (poll.events.length > seen.count) {
      await recordEvents(project, run, poll.events.slice(seen.count), (line) => ui.say(line));
      seen.count = poll.events.length;
      await onHandled(poll);
    }
    if (TERMINAL.has(poll.state)) {
      ui.done();
      return poll;
    }
    ui.update(status(poll));
    await (backend.waitForChange ? backend.waitForChange(handle, POLL_MS) : sleep(POLL_MS));
  }
}

/** Follows one attempt to a terminal state, keeping the record and ledger current. */
export async function followAttempt(
  project: Project,
  backend: Backend,
  run: RunRecord,
  attempt: AttemptRecord,
  ui: StatusLine,
): Promise<AttemptRecord> {
  const started = Date.parse(attempt.started_at);
  const seen = { count: attempt.events_seen ?? 0 };
  const poll = await pollUntilDone(project, backend, run, attempt.handle!, ui, (p) => statusText(attempt, p, started), seen, async (p) => {
    // Persist progress as it happens: `make status` and a re-attaching orchestrator see it.
    attempt.events_seen = seen.count;
    attempt.last_step = p.last_step ?? attempt.last_step;
    await saveRun(project, run);
  });
  await recordAttemptEnd(project, run, attempt, poll, () => backend.pull(attempt.handle!), (line) => ui.say(line));
  return attempt;
}

export interface DriveOptions {
  backend: Backend;
  maxAttempts: number;
  ui: StatusLine;
  /** true once the orchestrator itself was told to stop: no further attempts then */
  stopping: () => boolean;
  onSubmitted?: (attempt: AttemptRecord, backend: Backend) => void;
  /** the backend after `current` in the run's order, for an attempt whose worker was lost */
  nextBackend?: (current: Backend) => Promise<Backend | null>;
}

/** Runs attempts until one succeeds, fails, is cancelled, or the attempt budget is spent. */
export async function driveRun(project: Project, run: RunRecord, opts: DriveOptions): Promise<AttemptState> {
  const { ui } = opts;
  let backend = opts.backend;
  for (;;) {
    const n = run.attempts.length + 1;
    if (n > opts.maxAttempts) {
      ui.say(`switchyard: giving up after ${opts.maxAttempts} attempts; run make train again to continue from the last checkpoint`);
      return run.attempts.at(-1)?.state ?? 'failed';
    }
    const handle = await backend.submit(attemptSpec(project, run, n));
    const attempt = startedAttempt(n, backend.name, handle);
    run.attempts.push(attempt);
    await saveRun(project, run);
    await recordInLedger(project, 'attempt.started', { run_id: run.run_id, attempt: n, backend: backend.name });
    opts.onSubmitted?.(attempt, backend);
    const ended = await followAttempt(project, backend, run, attempt, ui);
    const resumable = ended.state === 'preempted' || ended.state === 'lost';
    if (!resumable || opts.stopping()) {
      if (resumable) ui.say(`attempt ${n} ${ended.state}: ${ended.reason}; make train resumes it`);
      return ended.state;
    }
    // A lost worker (host gone, job vanished) moves on to the next backend in the run's order;
    // a preempted one comes back where it was (spot capacity returns).
    const next = ended.state === 'lost' ? await opts.nextBackend?.(backend) : null;
    if (next) backend = next;
    ui.say(`attempt ${n} ${ended.state}: ${ended.reason}; starting attempt ${n + 1} on ${backend.name} from the last committed checkpoint`);
  }
}
