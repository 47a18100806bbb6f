// make fleet-pull run=<id> | experiment=<slug>[/<name>]: brings every shard's checkpoints,
// outputs and logs home to the store from its host, finished or not.
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { openFleetRun, refreshFleetRun } from './lib/runs/fleet-search.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('fleet-pull', { run: z.string().optional(), experiment: z.string().optional() });
  const project = await openProject();
  const { run, fleet } = await openFleetRun(project, vars, 'fleet-pull');
  await refreshFleetRun(project, run, fleet);
  let failed = 0;
  for (const shard of run.shards!) {
    const last = shard.attempts.at(-1);
    if (!last?.handle) continue;
    try {
      await fleet.pull(last.handle);
      console.log(`✓ shard ${shard.index} (${String(last.handle.host)}, attempt ${last.n}, ${last.state})`);
    } catch (err) {
      failed++;
      console.log(`✗ shard ${shard.index} (${String(last.handle.host)}): ${(err as Error).message}`);
    }
  }
  console.log(`pulled into ${project.store.locate(`runs/${run.run_id}/shards/`)}${failed ? `; ${failed} shard(s) could not be reached` : ''}`);
  return failed ? 1 : 0;
});
