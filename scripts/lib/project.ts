// Everything a verb needs to know about the repository it runs in, opened once.
import path from 'node:path';
import { findRoot, loadConfig } from './config/load-config.js';
import { StateDb } from './runs/state-db.js';
import { openStore } from './store/open-store.js';
import type { Workspace } from './workspace.js';

/** Everything a verb needs: the workspace and the index of its runs. */
export interface Project extends Workspace {
  /** opened on first use (SQLite and its WAL, ~4 ms): make train has git pin its code meanwhile */
  readonly db: StateDb;
}

export async function openProject(cwd = process.cwd()): Promise<Project> {
  const root = findRoot(cwd);
  const config = await loadConfig(root);
  const stateDir = path.join(root, '.switchyard');
  const store = await openStore(config.defaults.store, root, config.defaults.s3);
  let db: StateDb | undefined;
  return {
    root,
    stateDir,
    config,
    store,
    get db() {
      return (db ??= new StateDb(path.join(stateDir, 'state.db')));
    },
    ledgerPath: path.join(stateDir, 'ledger.jsonl'),
    workDir: (runId) => path.join(stateDir, 'work', runId),
  };
}
