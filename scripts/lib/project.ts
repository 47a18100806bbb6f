// Everything a verb needs to know about the repository it runs in, opened once.
import path from 'node:path';
import { findRoot, loadConfig, type Config } from './config/load-config.js';
import { StateDb } from './runs/state-db.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';

export interface Project {
  root: string;
  /** .switchyard/: state.db, ledger.jsonl, caches, per-run scratch folders */
  stateDir: string;
  config: Config;
  store: Store;
  db: StateDb;
  ledgerPath: string;
  workDir(runId: string): string;
}

export async function openProject(cwd = process.cwd()): Promise<Project> {
  const root = findRoot(cwd);
  const config = await loadConfig(root);
  const stateDir = path.join(root, '.switchyard');
  const store = await openStore(config.defaults.store, root, config.defaults.s3);
  return {
    root,
    stateDir,
    config,
    store,
    db: new StateDb(path.join(stateDir, 'state.db')),
    ledgerPath: path.join(stateDir, 'ledger.jsonl'),
    workDir: (runId) => path.join(stateDir, 'work', runId),
  };
}
