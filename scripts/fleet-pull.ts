// make fleet-pull run=<id> | experiment=<slug>[/<name>]: brings every shard's checkpoints,
// outputs and logs home to the store from its host, finished or not.
import { z } from 'zod';
import { followOnce } from './lib/actions/launch.js';
import { backendForHandle } from './lib/backends/index.js';
import { openProject } from './lib/project.js';
import { findRun } from './lib/runs/find-run.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('fleet-pull', { run: z.string().optional(), experiment: z.string().optional() });
  const project = await openProject();
  const run = await findRun(project, vars, 'fleet-pull', (r) => r.sharded, 'fleet search');
  await followOnce(project, run);
  let failed = 0;
  for (const unit of run.units) {
    const last = unit.attempts.at(-1);
    if (!last?.handle) continue;
    try {
      await (await backendForHandle(project, last.handle)).pull(last.handle);
      console.log(`✓ shard ${unit.index} (${String(last.handle.host)}, attempt ${last.n}, ${last.state})`);
    } catch (err) {
      failed++;
      console.log(`✗ shard ${unit.index} (${String(last.handle.host)}): ${(err as Error).message}`);
    }
  }
  console.log(`pulled into ${project.store.locate(`runs/${run.run_id}/shards/`)}${failed ? `; ${failed} shard(s) could not be reached` : ''}`);
  return failed ? 1 : 0;
});
