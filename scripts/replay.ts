// make replay run=<id> [backend=<name>] [host=<name>] [fleet=<name>]: runs an experiment again with a
// recorded run's pins. Refuses, naming each pin, when the code, data or env here no longer match.
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
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('replay', { run: z.string(), backend: z.enum(BACKENDS).optional(), host: z.string().optional(), fleet: z.string().optional() });
  const project = await openProject();
  const recorded = await loadRun(project, vars.run);
  const name = vars.backend ?? recorded.backends[0] ?? 'local';
  const last = recorded.units[0]?.attempts.at(-1)?.handle;
  const fleet = name === 'fleet' ? (vars.fleet ?? recorded.fleet) : undefined;
  const host = name === 'ssh' ? (vars.host ?? (typeof last?.host === 'string' ? last.host : undefined)) : undefined;
  const where = fleet ? `fleet ${fleet}` : name;
  const display = new RunDisplay(where, (key) => project.store.locate(key));
  const signals = new ForegroundSignals((line) => display.say(line), (r) => `make status run=${r.run_id}   ·   make stop run=${r.run_id}`);
  const ctx = {
    project,
    host,
    fleet,
    echo: display.echo,
    sink: (e: Parameters<RunDisplay['handle']>[0]) => (signals.follow(e), display.handle(e)),
  };
  const backend = await openBackend(name, project, ctx);
  const result = await replay(ctx, recorded, backend, (run) => display.say(`replaying ${recorded.run_id} as ${run.run_id} on ${where} (all five pins match)`)).finally(() => display.done());
  if (result.kind !== 'driven' || result.detached) return 0;
  display.say(`replay ${result.run.run_id} ${result.state}`);
  return exitCodeFor(result.state, result.run.units[0]?.attempts.at(-1)?.exit_code ?? null);
});
