// make merge run=<id> | experiment=<slug>[/<name>]: verifies that a sharded run's shard files
// are one complete, consistent search, merges them by the spec's strategy, and stores the
// merged file and a merge report (also in the ledger).
import { z } from 'zod';
import { followOnce } from './lib/actions/launch.js';
import { mergeRun } from './lib/actions/merge.js';
import { describeMerge } from './lib/cli/merge-lines.js';
import { openProject } from './lib/project.js';
import { findRun, SHARDED } from './lib/runs/find-run.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('merge', { run: z.string().optional(), experiment: z.string().optional() });
  const project = await openProject();
  const run = await findRun(project, vars, 'merge', SHARDED);
  await followOnce(project, run); // shards that ended since: recorded and brought home
  const summary = await mergeRun(project, run);
  for (const line of describeMerge(summary, project.store.locate(summary.merged.key))) console.log(line);
  console.log(`report: ${project.store.locate(`runs/${run.run_id}/merge-report.json`)}`);
  return 0;
});
