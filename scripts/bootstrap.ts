// make bootstrap host=<name> | fleet=<name> [experiment=<slug>[/<name>]] [start=1]
// Makes an inventory host ready to run experiments, one idempotent step at a time, each
// reported with ✓/✗ and its time: ssh, tools, node, secrets, sync, runner, venv, data, tmux.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { z } from 'zod';
import { openProject, type Project } from './lib/project.js';
import { bootstrapSteps } from './lib/remote/bootstrap.js';
import { openRemoteHost } from './lib/remote/open-host.js';
import type { RemoteHost } from './lib/remote/remote-host.js';
import { loadExperiment, type Experiment } from './lib/spec/experiment.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('bootstrap', {
    host: z.string().optional(),
    fleet: z.string().optional(),
    experiment: z.string().optional(),
    start: Flag.optional(),
  });
  const project = await openProject();
  const exp: Experiment | null = vars.experiment ? await loadExperiment(project.root, vars.experiment) : null;
  if (vars.start && !exp) throw new UserError('bootstrap: start=1 needs experiment=<slug>');
  if (vars.fleet) {
    // Every host of the fleet, in its order, into the fleet's project folder.
    const fleet = project.config.fleets[vars.fleet];
    if (!fleet) throw new UserError(`fleet: unknown fleet ${JSON.stringify(vars.fleet)} (known: ${Object.keys(project.config.fleets).join(', ') || 'none'}); add it under fleets in cluster_fleet_config.ts`);
    if (vars.start) throw new UserError(`bootstrap: start=1 is for one host; start a fleet search with make fleet-search experiment=${exp!.ref} fleet=${vars.fleet}`);
    for (const name of fleet.hosts) await bootstrapHost(project, await openRemoteHost(project, name, { root: fleet.root }), exp);
    console.log(`next: make fleet-search experiment=${exp?.ref ?? '<slug>'} fleet=${vars.fleet}`);
    return 0;
  }
  const host = await openRemoteHost(project, vars.host);
  await bootstrapHost(project, host, exp);
  if (!vars.start) {
    console.log(`next: make train experiment=${exp?.ref ?? '<slug>'} backend=ssh host=${host.name}`);
    return 0;
  }
  const train = spawn(process.execPath, [path.join(project.root, 'dist/scripts/train.js'), `experiment=${exp!.ref}`, 'backend=ssh', `host=${host.name}`], { stdio: 'inherit' });
  return new Promise<number>((resolve) => train.on('close', (code) => resolve(code ?? 1)));
});

async function bootstrapHost(project: Project, host: RemoteHost, exp: Experiment | null): Promise<void> {
  const entry = project.config.hosts[host.name]!;
  const steps = bootstrapSteps(project, host, {
    exp,
    nodeMode: entry.node,
    python: entry.python,
    runnerBundle: path.join(project.root, 'dist', 'runner', 'run-attempt.mjs'),
  });
  const started = Date.now();
  for (const step of steps) {
    const t0 = Date.now();
    try {
      const detail = await step.run();
      const secs = ((Date.now() - t0) / 1000).toFixed(2).padStart(6);
      console.log(detail === null ? `- ${step.name.padEnd(8)} ${secs}s  skipped (no experiment= given, or nothing to do)` : `✓ ${step.name.padEnd(8)} ${secs}s  ${detail}`);
    } catch (err) {
      console.log(`✗ ${step.name.padEnd(8)} ${((Date.now() - t0) / 1000).toFixed(2).padStart(6)}s`);
      throw err;
    }
  }
  console.log(`${host.name} is ready (${((Date.now() - started) / 1000).toFixed(1)}s)`);
}
