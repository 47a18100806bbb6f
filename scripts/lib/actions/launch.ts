// Starting, resuming, re-attaching to and retrying runs: the supervisor with this process as its
// owner. Everything happens through the event sink and the returned result; nothing is
// printed here, so a verb and a long-lived server call the same code.
import { backendForHandle, checkResources, openBackend, type BackendContext } from '../backends/index.js';
import type { Backend } from '../backends/backend.js';
import type { BackendName } from '../config/define-config.js';
import type { Project } from '../project.js';
import { followedElsewhere, holdLauncher, launcherOf, stopAskedOf } from '../runs/launcher-lock.js';
import { openRun } from '../runs/open-run.js';
import { codeRestore } from '../pins/code-restore.js';
import { comparePins } from '../pins/digest.js';
import { pinExperiment } from '../pins/pin-experiment.js';
import { ensureUnits, runKeys, runState, type RunRecord, type RunState } from '../runs/run-record.js';
import { runJournal } from '../runs/run-store.js';
import { Supervisor } from '../runs/supervisor.js';
import type { SupervisorEvent } from '../runs/supervision.js';
import { attemptSpec } from '../runs/unit-spec.js';
import { requireSecrets } from '../secrets/dotenv.js';
import { loadExperiment } from '../spec/experiment.js';
import { onFailure, UserError } from '../ui/errors.js';
import type { MergeSummary } from './merge.js';
import { agentDrives, agentWho, lookAtAgent } from '../agent/agent-lock.js';
import { closeRun, desiredRun, followerLive, settledState, wantRun } from '../agent/desired.js';
import { FollowerBeat } from '../agent/follower.js';
import { agentHome } from '../agent/home.js';
import { hostname } from 'node:os';

export type LaunchEvent =
  | SupervisorEvent
  /** a run is chosen and about to be claimed, or written: until it opens, it must not be left half-done */
  | { type: 'opening' }
  /** the run is open: new, or resumed (with the supervisor that drives it, for the caller's signals) */
  | { type: 'opened'; how: 'new' | 'resume' | 'retry'; run: RunRecord; backend: Backend; supervisor: Supervisor }
  | { type: 'merged'; summary: MergeSummary };

export type LaunchResult =
  | { kind: 'finished'; run: RunRecord }
  | {
      kind: 'driven';
      run: RunRecord;
      state: RunState;
      detached: boolean;
      stranded: number[];
      merge: MergeSummary | null;
      /** detached because the agent carries it: who (`pid 12 on nas`), or (tookOver) what became of the run another process took over from this silent shell */
      carrier?: { who: string; tookOver: boolean };
    };

export interface LaunchContext extends BackendContext {
  project: Project;
  sink: (e: LaunchEvent) => void;
}

export interface TrainOptions {
  experiment: string | undefined;
  backend?: BackendName;
  again?: boolean;
  seed?: number;
  requeue?: boolean;
  /** make train-1: the spec's `smoke:` overrides applied, a run of its own */
  smoke?: boolean;
  /** submit, then return and leave the run to the agent (detach=1; always while an agent runs that can carry it) */
  detach?: boolean;
}

/**
 * make train: pins the experiment, then starts, resumes or reports its run and drives it. The
 * run is recorded as wanted finished, so that should this process die before its end, the
 * agent carries it on; an end that does not resume (a success, a stop, a failure) closes that.
 */
export async function train(ctx: LaunchContext, opts: TrainOptions): Promise<LaunchResult> {
  const { project } = ctx;
  const exp = await loadExperiment(project.root, opts.experiment, { smoke: opts.smoke });
  requireSecrets(project.root, exp.file, exp.spec.secrets);
  // Pinning waits mostly on git and the disk: it goes on while the agent and backend are looked at.
  const pinning = pinExperiment(project.root, project.stateDir, exp, opts.seed);
  pinning.catch(() => {}); // a refusal below is the error to report; the pin's own is awaited after
  const name = opts.backend ?? exp.spec.backends?.[0] ?? project.config.defaults.backend;
  const home = agentHome(project);
  const agent = await lookAtAgent(home);
  // A running agent carries the run, unless it is on another machine and the run's attempt would run on this one.
  const agentCarries = agent.state === 'running' && (agent.info.host === hostname() || name !== 'local');
  const detach = (opts.detach ?? false) || agentCarries;
  const carrier = agentCarries ? agentWho(agent.info) : null;
  const backend = await openBackend(name, project, { ...ctx, detached: detach });
  checkResources(exp.file, exp.spec, backend, project.config);
  void project.db; // opened while git works on the pin, rather than before it started
  const pinned = await pinning;
  const backends = [name, ...(exp.spec.backends ?? []).filter((b) => b !== name)];
  const opened = await openRun(project, exp, pinned, { backends, again: opts.again ?? false, ready: () => ready(backend, ctx.sink), opening: () => ctx.sink({ type: 'opening' }) });
  try {
    if (opened.kind === 'finished') return { kind: 'finished', run: opened.run };
    const { result, takenBy } = await driveWanted(ctx, opened.run, backend, { how: opened.kind, requeue: opts.requeue, detach });
    if (result.kind !== 'driven') return result;
    if (takenBy) return { ...result, carrier: { who: takenBy, tookOver: true } };
    return detach && carrier ? { ...result, carrier: { who: carrier, tookOver: false } } : result;
  } finally {
    opened.release();
  }
}

/**
 * Drives a run this shell holds, recorded first as wanted finished, so that should the shell
 * die before its end the agent carries it on; an end that does not resume (a success, a stop,
 * a failure) closes that. `takenBy`: the agent that took the run over from this silent shell.
 */
async function driveWanted(ctx: LaunchContext, run: RunRecord, backend: Backend, opts: { how: 'new' | 'resume' | 'retry'; requeue?: boolean; detach?: boolean }): Promise<{ result: LaunchResult; takenBy: string | null }> {
  const home = agentHome(ctx.project);
  // In a store home an agent elsewhere tells this shell follows the run by its heartbeat; one
  // that finds the run taken over (it was silent past the stale time) leaves it at once. A
  // shell that hands the run over (detach) beats too, until its attempts are submitted and
  // recorded: an agent that took the run up sooner would read it without them, start its own
  // and never stop the ones this shell started.
  let supervisor: Supervisor | null = null;
  const beat = home.kind === 'store' ? new FollowerBeat(home, run.run_id, () => supervisor?.detach()) : null;
  const sink: LaunchContext['sink'] = (e) => {
    if (e.type === 'opened') supervisor = e.supervisor;
    ctx.sink(e);
  };
  await wantRun(home, { run_id: run.run_id, backend: backend.name, host: ctx.host, fleet: ctx.fleet, batch: ctx.batch, cluster: ctx.cluster, launched_on: hostname(), follower: beat?.follower });
  beat?.start();
  let result: LaunchResult;
  try {
    result = await drive({ ...ctx, sink }, run, backend, { how: opts.how, requeue: opts.requeue, held: true, detachOnceStarted: opts.detach, stillOwner: beat ? () => beat.stillMine() : undefined });
  } finally {
    await beat?.stop();
  }
  if (result.kind !== 'driven' || beat?.takenBy) return { result, takenBy: beat?.takenBy ?? null };
  const settled = settledState(run);
  if (!result.detached && settled.done) await closeRun(home, run.run_id, settled.state, settled.reason);
  return { result, takenBy: null };
}

/** make replay: a new run with a recorded run's pins, refused (naming the pin) when one no longer matches. */
export async function replay(ctx: LaunchContext, recorded: RunRecord, backend: Backend, onOpened: (run: RunRecord) => void): Promise<LaunchResult> {
  const { project } = ctx;
  // The record must be the one the ledger vouches for: an edited pin would replay other pins.
  const [{ runLedgerState }, { recordProblems }] = await Promise.all([import('../audit/ledger-state.js'), import('../audit/record-check.js')]); // replay only: kept off make train's start
  const tampered = recordProblems(recorded, (await runLedgerState(project.ledgerPath, recorded.run_id)).runs.get(recorded.run_id));
  if (tampered.length) throw new UserError(`cannot replay ${recorded.run_id}: its record was changed after it was created: ${tampered.join('; ')} (make verify checks every run)`);
  const exp = await loadExperiment(project.root, recorded.experiment, { smoke: recorded.smoke === true });
  requireSecrets(project.root, exp.file, exp.spec.secrets);
  checkResources(exp.file, exp.spec, backend, project.config);
  const pinned = await pinExperiment(project.root, project.stateDir, exp, recorded.pins.seed);
  const diffs = comparePins(recorded.pins, pinned.pins);
  if (diffs.length) {
    const diff = project.store.locate(runKeys.sourceDiff(recorded.run_id));
    const fix = diffs.some((d) => d.startsWith('code:')) ? ` (for the code: ${await codeRestore(project.root, recorded.pins.code, pinned.pins.code, diff)})` : '';
    throw new UserError(`cannot replay ${recorded.run_id}: ${diffs.join('; ')}${fix}`);
  }
  const { run, release } = await openRun(project, exp, pinned, {
    backends: [backend.name],
    again: true,
    replayOf: recorded.run_id,
    ready: () => ready(backend, ctx.sink),
    opening: () => ctx.sink({ type: 'opening' }),
  });
  try {
    onOpened(run);
    // Wanted finished as a train is: should this shell die, the agent carries the replay on.
    return (await driveWanted(ctx, run, backend, { how: 'retry' })).result;
  } finally {
    release();
  }
}

/**
 * Whether attempts can start on the backend at all (a host answers, its key is known, it is
 * bootstrapped): checked before a new run is created, so a refusal leaves nothing behind. When
 * every host of several fails, each one's reason is reported before the refusal.
 */
async function ready(backend: Backend, sink: LaunchContext['sink']): Promise<void> {
  const slots = backend.slots().map((s) => s.name);
  const outcomes: [string, Error | null, number][] = [];
  const results = await backend.prepare(slots, (slot, outcome, ms) => outcomes.push([slot, outcome instanceof Error ? outcome : null, ms]));
  const errors = slots.map((s) => results.get(s)).filter((e): e is Error => !!e);
  if (errors.length < slots.length) return;
  if (slots.length === 1) throw errors[0]! instanceof UserError ? errors[0]! : new UserError(`${backend.title}: ${errors[0]!.message.split('\n')[0]}`);
  for (const [slot, outcome, ms] of outcomes) if (outcome) sink({ type: 'prepared', backend: backend.name, slot, outcome, ms });
  throw new UserError(`${backend.title}: no host could be prepared (${errors[0]!.message.split('\n')[0]})`);
}

export interface DriveOptions {
  how: 'new' | 'resume' | 'retry';
  /** only these units (a retry) */
  only?: number[];
  /** the slot (host) they start on */
  slot?: string;
  requeue?: boolean;
  /** the caller holds the run's launcher lock already (openRun took it) */
  held?: boolean;
  /** an attempt that ended unseen goes on only as one seen ending would (the agent) */
  inheritedAsOwn?: boolean;
  /** returns once every unit has an attempt submitted, leaving them to run (detach=1) */
  detachOnceStarted?: boolean;
  /** asked after this process slept: false when an agent took the run over meanwhile */
  stillOwner?: () => Promise<boolean>;
}

/**
 * Whether a run on this backend is a sharded search: on a fleet always (a search of one shard is
 * still one); on a scheduler when the spec cuts the work, so a spec of one shard keeps the plain
 * layout every backend shares (and resumes, predicts and replays as a local run does).
 */
function runsSharded(backend: Backend, run: RunRecord): boolean {
  return backend.capabilities.shards && (backend.kind === 'placer' || run.spec.shards.count > 1);
}

/**
 * Drives a run's units on `backend` until they end (or the caller detaches), as the run's one
 * owner: a second process that tries is refused, naming the first.
 */
export async function drive(ctx: LaunchContext, run: RunRecord, backend: Backend, opts: DriveOptions): Promise<LaunchResult> {
  const { project } = ctx;
  const sharded = runsSharded(backend, run);
  if (run.units.length && run.sharded !== sharded) {
    const first = run.units[0]!.attempts[0]?.backend ?? 'another backend';
    throw new UserError(`run ${run.run_id} was started ${run.sharded ? 'as a sharded search' : `as one attempt on ${first}`}; give again=1 for a new run with these pins on ${backend.name}`);
  }
  ensureUnits(run, sharded);
  if (run.sharded && ctx.fleet) run.fleet ??= ctx.fleet;
  const release = opts.held ? () => {} : await holdLauncher(project, run.run_id);
  if (!release) throw followedElsewhere(project, run);
  const supervisor: Supervisor = new Supervisor({
    run,
    backend,
    openBackend: (name) => (name === backend.name ? Promise.resolve(backend) : openBackend(name, project, ctx)),
    journal: runJournal(project),
    specFor: (unit, attempt) => attemptSpec(project, run, unit, attempt),
    maxAttempts: project.config.defaults.max_attempts,
    only: opts.only,
    slot: opts.slot,
    requeue: opts.requeue,
    inheritedAsOwn: opts.inheritedAsOwn,
    stillOwner: opts.stillOwner,
    // make stop from another shell: this process stops the run, so its queued units never start.
    stopRequest: stopAskedOf(project, run.run_id),
    sink: opts.detachOnceStarted ? detachOnceStarted(ctx.sink, () => supervisor) : ctx.sink,
  });
  // Should this process fail while it follows the run, its attempts checkpoint and stop, and
  // their ends are recorded, before it exits: no experiment runs on unfollowed.
  const unguard = onFailure((err) => supervisor.shutdown((run.spec.train.grace_sec + 30) * 1000, `stopped after an error in switchyard: ${(err as Error)?.message ?? String(err)}`));
  try {
    ctx.sink({ type: 'opened', how: opts.how, run, backend, supervisor });
    await supervisor.drive();
    const state = runState(run);
    let merge: MergeSummary | null = null;
    if (!supervisor.isDetached && run.sharded && state === 'succeeded') {
      const { mergeRun } = await import('./merge.js'); // sharded runs only: kept off make train's start
      merge = await mergeRun(project, run);
      ctx.sink({ type: 'merged', summary: merge });
    }
    unguard();
    return { kind: 'driven', run, state, detached: supervisor.isDetached, stranded: supervisor.stranded(), merge };
  } finally {
    release();
  }
}

/** Passes events on, and detaches the supervisor once a tick shows no unit waiting to be submitted. */
function detachOnceStarted(sink: LaunchContext['sink'], supervisor: () => Supervisor): LaunchContext['sink'] {
  return (e) => {
    sink(e);
    if (e.type === 'tick' && e.units.every((u) => u.state !== 'queued' && u.state !== 'starting')) supervisor().detach();
  };
}

/** Whether a shell or the agent on another machine follows the run (a store home only: a local one has the launcher lock). */
async function followedFromElsewhere(project: Project, runId: string): Promise<boolean> {
  const home = agentHome(project);
  if (home.kind !== 'store') return false;
  const d = await desiredRun(home, runId);
  return !!d && !d.closed && (followerLive(d.follower, home.staleMs) || agentDrives(await lookAtAgent(home), runId, null));
}

/**
 * Records what ended among a run's live units since its record was written (one poll each),
 * starting nothing; only looks when another process follows the run (it records).
 */
export async function followOnce(project: Project, run: RunRecord): Promise<void> {
  const live = run.units.map((u) => u.attempts.at(-1)).find((a) => a?.handle && (a.state === 'running' || a.state === 'pending'));
  if (!live || launcherOf(project, run.run_id) !== null || (await followedFromElsewhere(project, run.run_id))) return;
  const release = await holdLauncher(project, run.run_id);
  if (!release) return;
  try {
    const backend = await backendForHandle(project, live.handle!);
    const supervisor = new Supervisor({
      run,
      backend,
      openBackend: (name) => (name === backend.name ? Promise.resolve(backend) : openBackend(name, project)),
      journal: runJournal(project),
      specFor: (unit, attempt) => attemptSpec(project, run, unit, attempt),
      maxAttempts: 0,
    });
    await supervisor.follow();
  } finally {
    release();
  }
}
