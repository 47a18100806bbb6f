// make train experiment=<slug>[/<name>] [backend=local|ssh host=<name>|fleet fleet=<name>|gcp-batch batch=<entry>|slurm cluster=<name>] [again=1] [seed=N] [requeue=0] [detach=1]
// make train-1 (smoke=1): the same with the spec's `smoke:` overrides, a short run of its own.
// Pins the experiment, then starts, resumes or reports its run, and follows it in the foreground;
// with detach=1, or while an agent runs (make agent) that can carry it, it submits and leaves the
// run to the agent; a shell the agent took the run over from (it slept) leaves it to the agent too.
import { z } from 'zod';
import { train, type LaunchResult } from './lib/actions/launch.js';
import { RunDisplay } from './lib/cli/run-display.js';
import { resumeOutlook } from './lib/cli/run-lines.js';
import { ForegroundSignals } from './lib/cli/signals.js';
import { BACKENDS } from './lib/config/load-config.js';
import { openProject } from './lib/project.js';
import { describePins, exitCodeFor } from './lib/cli/describe.js';
import { lastStep, runKeys } from './lib/runs/run-record.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

void runMain(async () => {
  const vars = readVars('train', {
    experiment: z.string().optional(),
    backend: z.enum(BACKENDS).optional(),
    again: Flag.optional(),
    seed: z.coerce.number().int().min(0).optional(),
    host: z.string().optional(),
    fleet: z.string().optional(),
    batch: z.string().optional(),
    cluster: z.string().optional(),
    requeue: Flag.optional(),
    smoke: Flag.optional(),
    detach: Flag.optional(),
  });
  const project = await openProject();
  const display = new RunDisplay(vars.fleet ? `fleet ${vars.fleet}` : (vars.backend ?? 'local'), (key) => project.store.locate(key));
  const signals = new ForegroundSignals(
    (line) => display.say(line),
    (run) => `make status run=${run.run_id}   ·   make stop run=${run.run_id}   ·   make train experiment=${run.experiment} backend=fleet fleet=${vars.fleet ?? '<name>'} re-attaches`,
  );
  const result = await train(
    {
      project,
      host: vars.host,
      fleet: vars.fleet,
      batch: vars.batch,
      cluster: vars.cluster,
      echo: display.echo,
      sink: (e) => {
        signals.follow(e);
        display.handle(e);
      },
    },
    { experiment: vars.experiment, backend: vars.backend, again: vars.again, seed: vars.seed, requeue: vars.requeue, smoke: vars.smoke, detach: vars.detach },
  ).finally(() => display.done());
  if (result.kind === 'driven' && result.detached && (vars.detach || result.carrier)) {
    const { run, carrier } = result;
    const line = carrier?.tookOver
      ? `run ${run.run_id}: while this shell was silent, ${carrier.who}`
      : `run ${run.run_id} submitted; ${carrier ? `the agent (${carrier.who}) carries it` : 'no agent is running: make agent carries it, or make train of the same experiment follows it'}`;
    display.say(line);
    display.say(`make status run=${run.run_id}   ·   make logs run=${run.run_id} follow=1   ·   make stop run=${run.run_id}`);
    return 0;
  }
  return report(result, display, (key) => project.store.locate(key), vars);
});

/** The run's last lines: where its outputs are, or what ended it and how to go on. */
function report(result: LaunchResult, display: RunDisplay, locate: (key: string) => string, vars: { seed?: number }): number {
  const { run } = result;
  const outputs = locate(runKeys.outputsDir(run.run_id));
  if (result.kind === 'finished') {
    display.say(`run ${run.run_id} already finished with these pins (${describePins(run.pins)})`);
    display.say(`outputs: ${outputs}   replay it with again=1`);
    return 0;
  }
  if (result.detached) return 0;
  const again = `make ${run.smoke ? 'train-1' : 'train'} experiment=${run.experiment}${vars.seed === undefined ? '' : ` seed=${vars.seed}`}`;
  if (run.sharded) {
    if (result.state === 'succeeded') return 0;
    const unfinished = run.units.filter((u) => u.attempts.at(-1)?.state !== 'succeeded').map((u) => u.index);
    display.say(`run ${run.run_id} ${result.state}: shard${unfinished.length > 1 ? 's' : ''} ${unfinished.join(', ')} did not finish`);
    display.say(`  make retry run=${run.run_id} shard=${unfinished.join(',')} [host=<name>] re-runs them from their last checkpoint`);
    return exitCodeFor(result.state, null);
  }
  const final = run.units[0]!.attempts.at(-1)!;
  const took = ((Date.parse(final.ended_at ?? new Date().toISOString()) - Date.parse(run.units[0]!.attempts[0]!.started_at)) / 1000).toFixed(1);
  if (result.state === 'succeeded') {
    const step = lastStep(run);
    display.say(`run ${run.run_id} succeeded in ${took}s · ${step === null ? 'no checkpoint committed' : `last checkpoint step ${step}`} · outputs: ${outputs}`);
    if (run.command.predict) display.say(`next: make ${run.smoke ? 'predict-smoke' : 'predict'} experiment=${run.experiment}`);
    return 0;
  }
  display.say(`run ${run.run_id} ${result.state}${final.reason ? `: ${final.reason}` : ''} (logs: make logs run=${run.run_id})`);
  display.say(`the same pins: ${again} ${resumeOutlook(lastStep(run))}`);
  return exitCodeFor(result.state, final.exit_code);
}
