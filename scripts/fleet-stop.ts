// make fleet-stop run=<id> | experiment=<slug>[/<name>] [force=1]: asks every running shard of a
// fleet search to checkpoint and stop (SIGTERM, then SIGKILL after the grace; force=1 kills now),
// waits for them to end and records it. make train ... backend=fleet resumes them later.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { openFleetRun, refreshFleetRun } from './lib/runs/fleet-search.js';
import { launcherOf } from './lib/runs/launcher-lock.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('fleet-stop', { run: z.string().optional(), experiment: z.string().optional(), force: Flag.optional() });
  const project = await openProject();
  const { run, fleet } = await openFleetRun(project, vars, 'fleet-stop');
  let supervisor = await refreshFleetRun(project, run, fleet);
  const running = supervisor.running();
  if (!running.length) {
    console.log(`run ${run.run_id}: no shard is running`);
    return 0;
  }
  // Every shard is asked, whatever one unreachable host says; those that could not be asked are named.
  const asked = await Promise.allSettled(running.map((r) => fleet.cancel(r.handle, { force: vars.force ?? false })));
  const reached = running.filter((_, i) => asked[i]!.status === 'fulfilled');
  running.forEach((r, i) => {
    const a = asked[i]!;
    if (a.status === 'rejected') console.error(`shard ${r.shard}: could not ask it to stop: ${String((a.reason as Error).message ?? a.reason).split('\n')[0]}`);
  });
  if (reached.length) console.log(`asked shard${reached.length > 1 ? 's' : ''} ${reached.map((r) => r.shard).join(', ')} to checkpoint and stop`);
  const launcher = launcherOf(project, run.run_id);
  if (launcher !== null) {
    console.log(`the launcher in another shell (pid ${launcher}) follows them to their end and records it`);
    return reached.length === running.length ? 0 : 1;
  }
  const deadline = Date.now() + (run.spec.train.grace_sec + 30) * 1000;
  while (supervisor.running().length && Date.now() < deadline) {
    await sleep(1000);
    supervisor = await refreshFleetRun(project, run, fleet);
  }
  console.log(supervisor.table());
  return supervisor.running().length ? 1 : 0;
});
