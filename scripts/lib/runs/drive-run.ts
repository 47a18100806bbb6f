// The orchestrator's attempt loop: submit an attempt, follow it to its end while writing the
// ledger and the run record, and start the next attempt after a preemption or a lost worker,
// resuming from the latest committed checkpoint. Cross-cutting work lives here, once, around
// whatever backend runs the attempt.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, PollResult } from '../backends/backend.js';
import type { Project } from '../project.js';
import type { AttemptSpec, RunnerEvent } from '../runner/attempt-spec.js';
import { faultPoint, isDiskProblem, onFailure } from '../ui/errors.js';
import { setupOf } from '../spec/experiment.js';
import { formatDuration, type StatusLine } from '../ui/status-line.js';
import { dataCacheFile } from './pin-experiment.js';
import { lastStep, shardUnit, startedAttempt, TERMINAL, type AttemptRecord, type AttemptState, type Handle, type RunRecord } from './run-record.js';
import { claimUnit } from '../runner/attempt-fence.js';
import { lostSteps, storedEvents } from './lost-steps.js';
import { recordInLedger, saveRun } from './run-store.js';

const POLL_MS = 250;

/** `shard`: one shard of a fleet search; without it the attempt covers the whole search. */
export function attemptSpec(project: Project, run: RunRecord, attempt: number | 'predict', shard?: { index: number; count: number }): AttemptSpec {
  const { spec } = run;
  const [slug, name = 'default'] = run.experiment.split('/');
  const competition = path.join('competitions', slug!);
  const setup = setupOf(spec);
  return {
    run_id: run.run_id,
    unit_id: shard ? shardUnit(run.run_id, shard.index) : run.run_id,
    pins_digest: run.pins.digest,
    attempt,
    command: attempt === 'predict' ? run.command.predict! : run.command.train,
    setup: setup?.command ?? null,
    cwd: competition,
    // Runs recorded before these fields existed have none of them in their spec: the defaults.
    command_cwd: (attempt === 'predict' ? spec.predict?.cwd : spec.train.cwd) ?? null,
    setup_cwd: setup?.cwd ?? null,
    data_dir: spec.data ? path.relative(project.root, path.resolve(project.root, competition, spec.data.dir)) : null,
    data_pin: spec.data
      ? { root: run.pins.data.root, include: spec.data.include, exclude: spec.data.exclude, cache: dataCacheFile({ slug: slug!, name }) }
      : null,
    metrics_from: attempt === 'predict' ? null : (spec.train.metrics_from ?? null),
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

/** What a resume of a run does, by the newest step it committed. */
export function resumeOutlook(step: number | null): string {
  return step === null ? 'starts it over from the beginning (no checkpoint committed)' : `resumes it from checkpoint step ${step}`;
}

/** The line for an attempt's start: what it restored, and for one that restored nothing, what a resume will do. */
function restoredLine(step: number | null, attempt: number | 'predict' | undefined): string {
  if (attempt === 'predict') return step === null ? 'predicting without a checkpoint (the run committed none)' : `restoring committed checkpoint step ${step}`;
  if (step !== null) return `resuming from committed checkpoint step ${step}`;
  if (attempt !== undefined && attempt > 1) return 'starting over from the beginning: no earlier attempt committed a checkpoint';
  return 'starting from scratch (no checkpoint yet: until the experiment commits one, a resume starts over from the beginning)';
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
      say(prefix + restoredLine(e.step, e.attempt));
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
  if (attempt.ended_at) return; // recorded already (by the stop after a failure, say)
  Object.assign(attempt, {
    state: poll.state,
    reason: poll.reason,
    exit_code: poll.exit_code,
    ended_at: new Date().toISOString(),
    last_step: poll.last_step ?? attempt.last_step,
    restored_step: poll.restored_step ?? attempt.restored_step,
    metrics: poll.metrics ?? attempt.metrics ?? null,
  });
  const who = shard === undefined ? `attempt ${attempt.n}` : `shard ${shard} attempt ${attempt.n}`;
  await pull().catch((err: Error) => {
    if (isDiskProblem(err)) throw err; // the record cannot be saved either: one line says why
    say(`switchyard: could not pull ${who}: ${err.message}`);
  });
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

/** The live status line of an attempt: its newest metrics (step, loss) and checkpoint, leaving out what is not known. */
export function statusText(attempt: Pick<AttemptRecord, 'n'>, poll: Pick<PollResult, 'metrics' | 'last_step'>, startedMs: number): string {
  const m = poll.metrics ?? {};
  const parts = [`▸ attempt ${attempt.n}`];
  if (typeof m.step === 'number' || typeof m.step === 'string') parts.push(`step ${m.step}`);
  if (typeof m.loss === 'number') parts.push(`loss ${m.loss.toPrecision(4)}`);
  parts.push(poll.last_step === null ? 'no checkpoint yet' : `ckpt ${poll.last_step}`);
  parts.push(formatDuration(Date.now() - startedMs));
  return parts.join(' · ');
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

/**
 * Follows one attempt to a terminal state, keeping the record and ledger current; `first` is
 * what remains of starting it (recording the start). Should the verb fail meanwhile, the
 * attempt is checkpointed, stopped and recorded before it exits (stopAfterFailure).
 */
export async function followAttempt(
  project: Project,
  backend: Backend,
  run: RunRecord,
  attempt: AttemptRecord,
  ui: StatusLine,
  first: () => Promise<void> = async () => {},
): Promise<AttemptRecord> {
  const started = Date.parse(attempt.started_at);
  const seen = { count: attempt.events_seen ?? 0 };
  const unguard = onFailure((err) => stopAfterFailure(project, backend, run, attempt, ui, seen, err));
  await first();
  const poll = await pollUntilDone(project, backend, run, attempt.handle!, ui, (p) => statusText(attempt, p, started), seen, async (p) => {
    // Persist progress as it happens: `make status` and a re-attaching orchestrator see it.
    attempt.events_seen = seen.count;
    attempt.last_step = p.last_step ?? attempt.last_step;
    attempt.metrics = p.metrics ?? attempt.metrics ?? null;
    await saveRun(project, run);
    if (p.last_step !== null) faultPoint('after-checkpoint');
  });
  await recordAttemptEnd(project, run, attempt, poll, () => backend.pull(attempt.handle!), (line) => ui.say(line));
  unguard();
  return attempt;
}

/**
 * The verb failed while following an attempt: ask it to checkpoint and stop (as make stop
 * does), wait for its end, and record that end with the failure as its reason, so no
 * experiment runs on with nobody following or recording it. A later make train resumes it.
 */
async function stopAfterFailure(
  project: Project,
  backend: Backend,
  run: RunRecord,
  attempt: AttemptRecord,
  ui: StatusLine,
  seen: { count: number },
  err: unknown,
): Promise<void> {
  if (attempt.ended_at) return;
  const handle = attempt.handle!;
  ui.say(`switchyard: checkpointing and stopping attempt ${attempt.n} before exiting`);
  await backend.cancel(handle);
  // The runner kills the experiment after its grace period; the margin covers a slow host.
  const deadline = Date.now() + (run.spec.train.grace_sec + 30) * 1000;
  let poll = await backend.poll(handle);
  while (!TERMINAL.has(poll.state) && Date.now() < deadline) {
    await (backend.waitForChange ? backend.waitForChange(handle, POLL_MS) : sleep(POLL_MS));
    poll = await backend.poll(handle);
  }
  if (!TERMINAL.has(poll.state)) {
    ui.say(`switchyard: attempt ${attempt.n} did not stop in time; make stop run=${run.run_id} stops it`);
    return;
  }
  // The failure may be the ledger's own: the end is still written into the run's record.
  await recordEvents(project, run, poll.events.slice(seen.count), (line) => ui.say(line)).catch((e: Error) => ui.say(`switchyard: could not record its events: ${e.message}`));
  const why = `stopped after an error in switchyard: ${(err as Error)?.message ?? String(err)}`;
  await recordAttemptEnd(project, run, attempt, { ...poll, reason: why }, () => backend.pull(handle), (line) => ui.say(line));
  ui.say(`attempt ${attempt.n} ended ${attempt.state} at checkpoint step ${attempt.last_step ?? '-'}; make train resumes it`);
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
    const ended = await followAttempt(project, backend, run, attempt, ui, async () => {
      await saveRun(project, run);
      await recordInLedger(project, 'attempt.started', { run_id: run.run_id, attempt: n, backend: backend.name });
      opts.onSubmitted?.(attempt, backend);
    });
    const resumable = ended.state === 'preempted' || ended.state === 'lost';
    if (!resumable || opts.stopping()) {
      if (resumable) ui.say(`attempt ${n} ${ended.state}: ${ended.reason}; make train ${resumeOutlook(lastStep(run))}`);
      return ended.state;
    }
    // A lost worker (host gone, job vanished) moves on to the next backend in the run's order;
    // a preempted one comes back where it was (spot capacity returns).
    const next = ended.state === 'lost' ? await opts.nextBackend?.(backend) : null;
    if (next) backend = next;
    const step = lastStep(run);
    const from = step === null ? 'from the beginning (no checkpoint committed)' : `from checkpoint step ${step}`;
    ui.say(`attempt ${n} ${ended.state}: ${ended.reason}; starting attempt ${n + 1} on ${backend.name} ${from}`);
  }
}
