// make replay run=<id> [backend=<name>] [host=<name>] [fleet=<name>]: runs an experiment again with a
// recorded run's pins. Refuses, naming each pin, when the code, data or env here no longer match.
import { z } from 'zod';
import { drive } from './lib/actions/launch.js';
import { RunDisplay } from './lib/cli/run-display.js';
import { ForegroundSignals } from './lib/cli/signals.js';
import { checkResources, openBackend } from './lib/backends/index.js';
import { BACKENDS } from './lib/config/load-config.js';
import { comparePins } from './lib/pins/digest.js';
import { openProject } from './lib/project.js';
import { exitCodeFor } from './lib/runs/describe.js';
import { createRun } from './lib/runs/open-run.js';
import { pinExperiment } from './lib/pins/pin-experiment.js';
import { runKeys } from './lib/runs/run-record.js';
import { loadRun } from './lib/runs/run-store.js';
import { loadExperiment } from './lib/spec/experiment.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('replay', { run: z.string(), backend: z.enum(BACKENDS).optional(), host: z.string().optional(), fleet: z.string().optional() });
  const project = await openProject();
  const recorded = await loadRun(project, vars.run);
  const exp = await loadExperiment(project.root, recorded.experiment);
  const pinned = await pinExperiment(project.root, project.stateDir, exp, recorded.pins.seed);
  const diffs = comparePins(recorded.pins, pinned.pins);
  if (diffs.length) {
    const fix = recorded.pins.code.dirty_sha256
      ? `git checkout ${recorded.pins.code.commit.slice(0, 12)} && git apply ${project.store.locate(runKeys.sourceDiff(recorded.run_id))}`
      : `git checkout ${recorded.pins.code.commit.slice(0, 12)}`;
    throw new UserError(`cannot replay ${recorded.run_id}: ${diffs.join('; ')} (for the code: ${fix})`);
  }
  const name = vars.backend ?? recorded.backends[0] ?? 'local';
  const last = recorded.units[0]?.attempts.at(-1)?.handle;
  const fleet = name === 'fleet' ? (vars.fleet ?? recorded.fleet) : undefined;
  const host = name === 'ssh' ? (vars.host ?? (typeof last?.host === 'string' ? last.host : undefined)) : undefined;
  const display = new RunDisplay(fleet ? `fleet ${fleet}` : name, (key) => project.store.locate(key));
  const signals = new ForegroundSignals((line) => display.say(line), (r) => `make status run=${r.run_id}   ·   make stop run=${r.run_id}`);
  const ctx = { project, host, fleet, echo: display.echo, sink: (e: Parameters<RunDisplay['handle']>[0]) => (e.type === 'opened' && signals.attach({ supervisor: e.supervisor, run: e.run, backend: e.backend }), display.handle(e)) };
  const backend = await openBackend(name, project, ctx);
  checkResources(exp.file, exp.spec, backend, project.config);
  const run = await createRun(project, exp, pinned, [name], recorded.run_id);
  if (fleet) run.fleet = fleet;
  display.say(`replaying ${recorded.run_id} as ${run.run_id} on ${fleet ? `fleet ${fleet}` : name} (all five pins match)`);
  const result = await drive(ctx, run, backend, { how: 'retry' }).finally(() => display.done());
  if (result.kind !== 'driven' || result.detached) return 0;
  display.say(`replay ${run.run_id} ${result.state}`);
  return exitCodeFor(result.state, run.units[0]?.attempts.at(-1)?.exit_code ?? null);
});
