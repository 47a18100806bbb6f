// make reindex: rebuilds .switchyard/state.db from the run records in the store.
import { openProject } from './lib/project.js';
import { parseRunJson, type RunRecord } from './lib/runs/run-record.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const project = await openProject();
  const runs: RunRecord[] = [];
  for (const key of await project.store.list('runs/')) {
    if (!/^runs\/[^/]+\/run\.json$/.test(key)) continue;
    const bytes = await project.store.getBytes(key);
    try {
      runs.push(parseRunJson(bytes!.toString('utf8')));
    } catch {
      console.error(`switchyard: skipping ${project.store.locate(key)}: not valid JSON`);
    }
  }
  project.db.replaceAll(runs);
  console.log(`reindexed ${runs.length} run${runs.length === 1 ? '' : 's'} from ${project.store.url}`);
  return 0;
});
