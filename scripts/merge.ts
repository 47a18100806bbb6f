// make merge run=<id> | experiment=<slug>[/<name>]: verifies that a fleet search's shard files
// are one complete, consistent search, merges them by the spec's strategy, and stores the
// merged file and a merge report (also in the ledger).
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { openFleetRun, refreshFleetRun } from './lib/runs/fleet-search.js';
import { describeMerge, mergeRun } from './lib/runs/merge-run.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('merge', { run: z.string().optional(), experiment: z.string().optional() });
  const project = await openProject();
  const { run, fleet } = await openFleetRun(project, vars, 'merge');
  await refreshFleetRun(project, run, fleet); // shards that ended since: recorded and pulled home
  const summary = await mergeRun(project, run);
  for (const line of describeMerge(summary, project.store.locate(summary.merged.key))) console.log(line);
  console.log(`report: ${project.store.locate(`runs/${run.run_id}/merge-report.json`)}`);
  return 0;
});
