// make fleet-pull run=<id> | experiment=<slug>[/<name>]: brings every shard's checkpoints,
// outputs and logs home to the store from its host, finished or not.
import { z } from 'zod';
import { followOnce } from './lib/actions/launch.js';
import { bringHome } from './lib/actions/pull.js';
import { openProject } from './lib/project.js';
import { findRun, SHARDED } from './lib/runs/find-run.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('fleet-pull', { run: z.string().optional(), experiment: z.string().optional() });
  const project = await openProject();
  const run = await findRun(project, vars, 'fleet-pull', SHARDED);
  await followOnce(project, run);
  const homes = await bringHome(project, run);
  const failed = homes.filter((h) => h.error).length;
  for (const h of homes) console.log(h.error ? `✗ shard ${h.unit} (${h.host}): ${h.error}` : `✓ shard ${h.unit} (${h.host}, attempt ${h.attempt}, ${h.state})`);
  console.log(`pulled into ${project.store.locate(`runs/${run.run_id}/shards/`)}${failed ? `; ${failed} shard(s) could not be reached` : ''}`);
  return failed ? 1 : 0;
});
