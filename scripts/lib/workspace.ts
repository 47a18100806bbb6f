// What the rooms below runs/ need of the repository they work in: where it is, its config, its
// store, where per-unit scratch folders go. The Project (project.ts) is one, with the run index.
import type { Config } from './config/load-config.js';
import type { Store } from './store/store.js';

export interface Workspace {
  root: string;
  /** .switchyard/: state.db, ledger.jsonl, caches, per-unit scratch folders */
  stateDir: string;
  config: Config;
  store: Store;
  ledgerPath: string;
  /** the scratch folder of a unit (a run id, or `<run_id>/shards/<i>`) on this machine */
  workDir(unit: string): string;
}
