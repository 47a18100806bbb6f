// Where things live on a remote host, below its root (relative to the login directory):
//   <root>/repo/                       the project, rsynced (delta) from here
//   <root>/runtime/node                link to the Node (>= 20) the runner uses
//   <root>/runtime/run-attempt-<sha>.mjs   the self-contained runner, by content hash
//   <root>/scratch/<run_id>/           the runner's scratch: ckpt/, output/, attempts/<n>/
//                                      (a fleet shard's: <root>/scratch/<run_id>/shards/<i>/)
//   <root>/store/                      the host's own file store, when the project's store is
//                                      a local folder the host cannot reach (pulled home)
//   <root>/secrets.json                the declared secrets (a JSON object), mode 0600
//   <root>/kaggle/kaggle.json          the Kaggle CLI's credentials (0600), when the experiment
//                                      declares KAGGLE_USERNAME and KAGGLE_KEY (KAGGLE_CONFIG_DIR=<root>/kaggle)
//   <root>/venv/                       the experiment's Python environment, when it has one
import { checkRemotePath } from '../quote.js';

export const TMUX_SOCKET = 'switchyard';

export function hostLayout(root: string) {
  checkRemotePath(root);
  // unitId: a run id, or `<run_id>/shards/<i>` for one shard of a fleet search
  const attemptDir = (unitId: string, attempt: number | 'predict') => `${root}/scratch/${unitId}/attempts/${attempt}`;
  return {
    root,
    repo: `${root}/repo`,
    runtime: `${root}/runtime`,
    node: `${root}/runtime/node`,
    runner: (sha: string) => `${root}/runtime/run-attempt-${sha.slice(0, 16)}.mjs`,
    work: (unitId: string) => `${root}/scratch/${unitId}`,
    attemptDir,
    attemptSpec: (unitId: string, attempt: number | 'predict') => `${attemptDir(unitId, attempt)}/attempt.json`,
    store: `${root}/store`,
    secrets: `${root}/secrets.json`,
    kaggleJson: `${root}/kaggle/kaggle.json`,
    venv: `${root}/venv`,
  };
}

export type HostLayout = ReturnType<typeof hostLayout>;

/**
 * tmux session of one attempt: only [A-Za-z0-9_-], as tmux and checkSimpleName want.
 * `sy-<run>-<attempt>`, or `sy-<run>-s<i>-<attempt>` for shard i of a fleet search.
 */
export function attemptSession(unitId: string, attempt: number | 'predict', prefix = 'sy'): string {
  return `${prefix}-${unitId.replace('/shards/', '-s')}-${attempt}`;
}
