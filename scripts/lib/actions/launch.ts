// Starting, resuming, re-attaching to and retrying runs: the supervisor with this process as its
// owner. Everything happens through the event sink and the returned result; nothing is
// printed here, so a verb and a long-lived server call the same code.
import { backendForHandle, checkResources, openBackend, type BackendContext } from '../backends/index.js';
import type { Backend } from '../backends/backend.js';
import type { BackendName } from '../config/define-config.js';
import type { Project } from '../project.js';
import { holdLauncher, launcherOf } from '../runs/launcher-lock.js';
import { openRun } from '../runs/open-run.js';
import { ensureUnits, runState, type RunRecord, type RunState } from '../runs/run-record.js';
import { runJournal } from '../runs/run-store.js';
import { Supervisor } from '../runs/supervisor.js';
import type { SupervisorEvent } from '../runs/supervision.js';
import { attemptSpec } from '../runs/unit-spec.js';
import { loadExperiment } from '../spec/experiment.js';
import { UserError } from '../ui/errors.js';
import { mergeRun, type MergeSummary } from './merge.js';

export type LaunchEvent =
  | SupervisorEvent
  /** the run is open: new, or resumed (with the supervisor that drives it, for the caller's signals) */
  | { type: 'opened'; how: 'new' | 'resume' | 'retry'; run: RunRecord; backend: Backend; supervisor: Supervisor }
  | { type: 'merged'; summary: MergeSummary };

export type LaunchResult =
  | { kind: 'finished'; run: RunRecord }
  | { kind: 'driven'; run: RunRecord; state: RunState; detached: boolean; stranded: number[]; merge: MergeSummary | null };

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
}

/** make train: pins the experiment, then starts, resumes or reports its run and drives it. */
export async function train(ctx: LaunchContext, opts: TrainOptions): Promise<LaunchResult> {
  const { project } = ctx;
  const exp = await loadExperiment(project.root, opts.experiment);
  const name = opts.backend ?? exp.spec.backends?.[0] ?? project.config.defaults.backend;
  const backend = await openBackend(name, project, ctx);
  checkResources(exp.file, exp.spec, backend, project.config);
  const backends = [name, ...(exp.spec.backends ?? []).filter((b) => b !== name)];
  const opened = await openRun(project, exp, { backends, again: opts.again ?? false, seed: opts.seed });
  if (opened.kind === 'finished') return { kind: 'finished', run: opened.run };
  return drive(ctx, opened.run, backend, { how: opened.kind, requeue: opts.requeue });
}

export interface DriveOptions {
  how: 'new' | 'resume' | 'retry';
  /** only these units (a retry) */
  only?: number[];
  /** the slot (host) they start on */
  slot?: string;
  requeue?: boolean;
}

/**
 * Drives a run's units on `backend` until they end (or the caller detaches), as the run's one
 * owner: a second process that tries is refused, naming the first.
 */
export async function drive(ctx: LaunchContext, run: RunRecord, backend: Backend, opts: DriveOptions): Promise<LaunchResult> {
  const { project } = ctx;
  if (run.units.length && run.sharded !== backend.capabilities.shards) {
    const first = run.units[0]!.attempts[0]?.backend ?? 'another backend';
    throw new UserError(`run ${run.run_id} was started ${run.sharded ? 'as a sharded search' : `as one attempt on ${first}`}; give again=1 for a new run with these pins on ${backend.name}`);
  }
  ensureUnits(run, backend.capabilities.shards);
  if (run.sharded && ctx.fleet) run.fleet ??= ctx.fleet;
  const release = holdLauncher(project, run.run_id);
  if (!release) {
    const pid = launcherOf(project, run.run_id);
    const [status, stop] = run.sharded ? ['fleet-status', 'fleet-stop'] : ['status', 'stop'];
    throw new UserError(`run ${run.run_id} is already followed by a launcher in another shell (pid ${pid}); make ${status} run=${run.run_id} looks at it, make ${stop} run=${run.run_id} stops it`);
  }
  try {
    const supervisor = new Supervisor({
      run,
      backend,
      openBackend: (name) => (name === backend.name ? Promise.resolve(backend) : openBackend(name, project, ctx)),
      journal: runJournal(project),
      specFor: (unit, attempt) => attemptSpec(project, run, unit, attempt),
      maxAttempts: project.config.defaults.max_attempts,
      only: opts.only,
      slot: opts.slot,
      requeue: opts.requeue,
      sink: ctx.sink,
    });
    ctx.sink({ type: 'opened', how: opts.how, run, backend, supervisor });
    await supervisor.drive();
    const state = runState(run);
    let merge: MergeSummary | null = null;
    if (!supervisor.isDetached && run.sharded && state === 'succeeded') {
      merge = await mergeRun(project, run);
      ctx.sink({ type: 'merged', summary: merge });
    }
    return { kind: 'driven', run, state, detached: supervisor.isDetached, stranded: supervisor.stranded(), merge };
  } finally {
    release();
  }
}

/**
 * Records what ended among a run's live units since its record was written (one poll each),
 * starting nothing; only looks when another process follows the run (it records).
 */
export async function followOnce(project: Project, run: RunRecord): Promise<void> {
  const live = run.units.map((u) => u.attempts.at(-1)).find((a) => a?.handle && (a.state === 'running' || a.state === 'pending'));
  if (!live || launcherOf(project, run.run_id) !== null) return;
  const release = holdLauncher(project, run.run_id);
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
