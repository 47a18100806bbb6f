// make replay run=<id> [backend=<name>] [host=|fleet=|cluster=|batch=<name>]: runs an experiment
// again with a recorded run's pins, where the run last ran unless told otherwise. Refuses, naming
// each pin, when the code, data or env here no longer match.
import { z } from 'zod';
import { replay } from './lib/actions/launch.js';
import { RunDisplay } from './lib/cli/run-display.js';
import { ForegroundSignals } from './lib/cli/signals.js';
import { openBackend } from './lib/backends/index.js';
import { BACKENDS } from './lib/config/load-config.js';
import { openProject } from './lib/project.js';
import { exitCodeFor } from './lib/cli/describe.js';
import { loadRun } from './lib/runs/run-store.js';
import { readVars } from './lib/spec/make-vars.js';
import { replayTarget } from './lib/cli/replay-target.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const place = { host: z.string().optional(), fleet: z.string().optional(), cluster: z.string().optional(), batch: z.string().optional() };
  const vars = readVars('replay', { run: z.string(), backend: z.enum(BACKENDS).optional(), ...place });
  const project = await openProject();
  const recorded = await loadRun(project, vars.run);
  const { backend: name, host, fleet, cluster, batch } = replayTarget(vars, recorded);
  const where = fleet ? `fleet ${fleet}` : name;
  const display = new RunDisplay(where, (key) => project.store.locate(key));
  const signals = new ForegroundSignals((line) => display.say(line), (r) => `make status run=${r.run_id}   ·   make stop run=${r.run_id}`);
  const ctx = {
    project,
    host,
    fleet,
    cluster,
    batch,
    echo: display.echo,
    sink: (e: Parameters<RunDisplay['handle']>[0]) => (signals.follow(e), display.handle(e)),
  };
  const backend = await openBackend(name, project, ctx);
  const result = await replay(ctx, recorded, backend, (run) => display.say(`replaying ${recorded.run_id} as ${run.run_id} on ${where} (all five pins match)`)).finally(() => display.done());
  if (result.kind !== 'driven' || result.detached) return 0;
  display.say(`replay ${result.run.run_id} ${result.state}`);
  return exitCodeFor(result.state, result.run.units[0]?.attempts.at(-1)?.exit_code ?? null);
});
