// make train experiment=<slug>[/<name>] [backend=local|ssh host=<name>|fleet fleet=<name>] [again=1] [seed=N]
// Pins the experiment, then starts, resumes or reports its run, and follows it in the foreground.
import { z } from 'zod';
import { backendForHandle } from './lib/backends/index.js';
import { BACKENDS } from './lib/config/load-config.js';
import { openProject } from './lib/project.js';
import { describePins, exitCodeFor } from './lib/runs/describe.js';
import { followAttempt, resumeOutlook } from './lib/runs/drive-run.js';
import { foregroundBackend, runInForeground } from './lib/runs/foreground.js';
import { searchOnFleet } from './lib/runs/fleet-search.js';
import { openRun } from './lib/runs/open-run.js';
import { pinExperiment } from './lib/runs/pin-experiment.js';
import type { FleetBackend } from './lib/backends/fleet.js';
import { lastStep, runKeys, runState } from './lib/runs/run-record.js';
import { requireSecrets } from './lib/secrets/dotenv.js';
import { loadExperiment } from './lib/spec/experiment.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { atExit, runMain, UserError } from './lib/ui/errors.js';
import { StatusLine } from './lib/ui/status-line.js';

await runMain(async () => {
  const vars = readVars('train', {
    experiment: z.string().optional(),
    backend: z.enum(BACKENDS).optional(),
    again: Flag.optional(),
    seed: z.coerce.number().int().min(0).optional(),
    host: z.string().optional(),
    fleet: z.string().optional(),
    requeue: Flag.optional(),
  });
  const project = await openProject();
  const exp = await loadExperiment(project.root, vars.experiment);
  requireSecrets(project.root, exp.file, exp.spec.secrets);
  const backendName = vars.backend ?? exp.spec.backends?.[0] ?? project.config.defaults.backend;
  const ui = new StatusLine();
  const backend = await foregroundBackend(backendName, project, ui, { host: vars.host, fleet: vars.fleet });
  const backends = [backendName, ...(exp.spec.backends ?? []).filter((b) => b !== backendName)];
  const pinned = await pinExperiment(project.root, project.stateDir, exp, vars.seed);
  const opened = await openRun(project, exp, pinned, { backends, again: vars.again ?? false, ready: backend.ready?.bind(backend) });
  const { run } = opened;
  atExit(async () => opened.release());
  const outputs = project.store.locate(runKeys.outputsDir(run.run_id));

  if (opened.kind === 'finished') {
    ui.say(`run ${run.run_id} already finished with these pins (${describePins(run.pins)})`);
    ui.say(`outputs: ${outputs}   replay it with again=1`);
    return 0;
  }

  if (backend.name === 'fleet') {
    if (run.attempts.length) throw new UserError(`run ${run.run_id} was started as one attempt on ${run.attempts[0]!.backend}; give again=1 for a fleet search with these pins`);
    ui.say(opened.kind === 'new' ? `run ${run.run_id} on fleet ${vars.fleet}\n  pins: ${describePins(run.pins)}` : `resuming run ${run.run_id} on fleet ${vars.fleet}`);
    return searchOnFleet(project, run, backend as FleetBackend, { requeue: vars.requeue });
  }

  const last = run.attempts.at(-1);
  if (opened.kind === 'resume' && last?.state === 'running' && last.handle) {
    // Its orchestrator died (a live one would hold the run: openRun refuses then). A remote
    // attempt outlives it and is re-attached to; a local one died with it and ends lost.
    const previous = await backendForHandle(project, last.handle);
    if ((await previous.poll(last.handle)).state === 'running') ui.say(`re-attaching to run ${run.run_id}, attempt ${last.n} on ${last.backend}`);
    const ended = await followAttempt(project, previous, run, last, ui);
    ui.say(`attempt ${ended.n} ended ${ended.state}${ended.reason ? `: ${ended.reason}` : ''}`);
    if (ended.state === 'succeeded') {
      ui.say(`run ${run.run_id} succeeded · outputs: ${outputs}`);
      return 0;
    }
  }
  ui.say(
    opened.kind === 'new'
      ? `run ${run.run_id} on ${backendName}\n  pins: ${describePins(run.pins)}`
      : `resuming run ${run.run_id} (${runState(run)} after ${run.attempts.length} attempt${run.attempts.length === 1 ? '' : 's'}) on ${backendName}`,
  );

  const started = Date.now();
  const state = await runInForeground(project, run, backend, ui, vars.host);
  const final = run.attempts.at(-1)!;
  const took = ((Date.now() - started) / 1000).toFixed(1);
  if (state === 'succeeded') {
    const ckpt = final.last_step === null ? 'no checkpoint committed' : `last checkpoint step ${final.last_step}`;
    ui.say(`run ${run.run_id} succeeded in ${took}s · ${ckpt} · outputs: ${outputs}`);
    if (run.command.predict) ui.say(`next: make predict experiment=${exp.ref}`);
  } else {
    ui.say(`run ${run.run_id} ${state}${final.reason ? `: ${final.reason}` : ''} (logs: make logs run=${run.run_id})`);
    const again = `make train experiment=${exp.ref}${vars.seed === undefined ? '' : ` seed=${vars.seed}`}`;
    ui.say(`the same pins: ${again} ${resumeOutlook(lastStep(run))}`);
  }
  return exitCodeFor(state, final.exit_code);
});
