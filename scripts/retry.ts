// make retry run=<id> shard=<i>[,<j>...] [host=<name>] (make fleet-retry): runs those units again,
// from their last committed checkpoint, on another host than they last ran on (or on host=),
// follows them, and merges once every shard has succeeded. While an agent runs, the agent is
// asked to do it.
import { z } from 'zod';
import { drive } from './lib/actions/launch.js';
import { RunDisplay } from './lib/cli/run-display.js';
import { ForegroundSignals } from './lib/cli/signals.js';
import { askAgentToRetry, planRetry } from './lib/actions/retry.js';
import { openProject } from './lib/project.js';
import { exitCodeFor } from './lib/cli/describe.js';
import { findRun, SHARDED } from './lib/runs/find-run.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('retry', {
    run: z.string().optional(),
    experiment: z.string().optional(),
    shard: z.string().regex(/^\d+(,\d+)*$/, 'shard numbers, e.g. shard=3 or shard=1,4'),
    host: z.string().optional(),
  });
  const project = await openProject();
  const run = await findRun(project, vars, 'retry', SHARDED);
  const { backend, only, slot } = await planRetry(project, run, vars.shard.split(',').map(Number), vars.host);
  const asked = await askAgentToRetry(project, run, { backend, only, slot });
  if (asked) {
    // The agent drives the run: it starts the units, and this shell returns.
    console.log(`the agent (${asked.who}): ${asked.answer}`);
    console.log(`make status run=${run.run_id} follows them`);
    return 0;
  }
  const display = new RunDisplay(`fleet ${run.fleet}`, (key) => project.store.locate(key));
  const signals = new ForegroundSignals((line) => display.say(line), (r) => `make status run=${r.run_id}   ·   make stop run=${r.run_id}`);
  const result = await drive(
    { project, sink: (e) => (signals.follow(e), display.handle(e)) },
    run,
    backend,
    { how: 'retry', only, slot },
  ).finally(() => display.done());
  if (result.kind !== 'driven' || result.detached || result.state === 'succeeded') return 0;
  const unfinished = run.units.filter((u) => u.attempts.at(-1)?.state !== 'succeeded').map((u) => u.index);
  display.say(`run ${run.run_id} ${result.state}: shard${unfinished.length > 1 ? 's' : ''} ${unfinished.join(', ')} did not finish`);
  return exitCodeFor(result.state, null);
});
