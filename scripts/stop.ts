// make stop run=<id> [shard=<i>,...] [force=1] (make fleet-stop): asks the run's running units to
// checkpoint and stop (SIGTERM, then SIGKILL after the grace period; force=1 kills now), waits
// for them to end and records it; a launcher in another shell is asked to stop the run, so its
// queued units never start. make train resumes them later. A run the agent carries is stopped
// by the agent, asked through its request inbox.
import { z } from 'zod';
import { stopWanted } from './lib/actions/stop.js';
import { unitTable } from './lib/cli/run-display.js';
import { lookAtUnits } from './lib/actions/look.js';
import { openProject } from './lib/project.js';
import { ANY, findRun } from './lib/runs/find-run.js';
import { lastStep, type AttemptRecord, type RunRecord } from './lib/runs/run-record.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

void runMain(async () => {
  const vars = readVars('stop', {
    run: z.string().optional(),
    experiment: z.string().optional(),
    shard: z.string().regex(/^\d+(,\d+)*$/, 'shard numbers, e.g. shard=3 or shard=1,4').optional(),
    force: Flag.optional(),
  });
  const project = await openProject();
  const run = await findRun(project, vars, 'stop', ANY);
  const units = vars.shard?.split(',').map(Number);
  const unit = (i: number) => (run.sharded ? `shard ${i}` : `attempt ${run.units[i]!.attempts.at(-1)!.n}`);
  if (!run.sharded) {
    const last = run.units[0]?.attempts.at(-1);
    if (last) console.log(`stopping ${run.run_id} attempt ${last.n}: waiting for its checkpoint (grace ${run.spec.train.grace_sec}s)`);
  }
  const outcome = await stopWanted(project, run, { force: vars.force, units });
  if (outcome.by === 'agent') {
    console.log(`the agent (${outcome.who}): ${outcome.answer}`);
    const last = outcome.run.units[0]?.attempts.at(-1);
    if (!outcome.run.sharded && last) console.log(endedLine(last, outcome.run));
    return outcome.settled ? 0 : 1;
  }
  const { result } = outcome;
  for (const u of result.unreachable) console.error(`${unit(u.unit)}: ${u.why}`);
  if (run.sharded && result.asked.length) console.log(`asked shard${result.asked.length > 1 ? 's' : ''} ${result.asked.join(', ')} to checkpoint and stop`);
  if (result.follower !== null) console.log(`the launcher in another shell (pid ${result.follower}) follows them to their end and records it`);
  if (run.sharded) console.log(unitTable(await lookAtUnits(project, run)));
  else {
    const last = run.units[0]?.attempts.at(-1);
    // One recorded queued was never sent, or its submit was looked for and had started nothing.
    if (last && last.state !== 'queued') console.log(endedLine(last, run));
    else if (!result.unreachable.length) console.log(`no attempt had started; make train experiment=${run.experiment} starts it`);
  }
  return result.running.length || result.unreachable.length ? 1 : 0;
});

/** Where a stopped attempt ended, and what the next make train does: resume from the run's newest step, or start over. */
function endedLine(last: AttemptRecord, run: RunRecord): string {
  const step = lastStep(run);
  const next = step === null ? 'starts it over (no checkpoint yet)' : `resumes it from checkpoint step ${step}`;
  const at = last.last_step === null ? 'before a checkpoint of its own' : `at checkpoint step ${last.last_step}`;
  return `attempt ${last.n} ${last.state} ${at}; make train experiment=${run.experiment} ${next}`;
}
