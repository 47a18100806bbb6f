// Every submission make submit recorded, for the dashboard: the ledger says which runs have any
// (one read instead of a store listing per run), the store holds each one's record.
import { listSubmissions as runSubmissions } from '../kaggle/submission-record.js';
import { readLedger } from '../ledger/ledger.js';
import type { Project } from '../project.js';

export interface SubmissionRow {
  run_id: string;
  experiment: string;
  competition: string;
  /** when it was made (ISO) */
  at: string;
  file: string;
  sha256: string;
  message: string | null;
  /** nothing was uploaded (dry=1, or no Kaggle); `reason` says why */
  dry: boolean;
  reason: string | null;
  /** the local scorer's answer */
  score: Record<string, unknown> | null;
  /** the leaderboard's, once Kaggle has scored it */
  public_score: number | null;
  private_score: number | null;
  kaggle_status: string | null;
}

/** Newest first; only `competition`'s when given. */
export async function listSubmissions(project: Project, competition?: string): Promise<SubmissionRow[]> {
  const ids = new Set<string>();
  for (const e of await readLedger(project.ledgerPath).catch(() => [])) if (e.type === 'submission.made' && typeof e.run_id === 'string') ids.add(e.run_id);
  const perRun = await Promise.all(
    [...ids].map(async (id) => {
      const run = project.db.get(id);
      const comp = run?.experiment.split('/')[0];
      if (!run || (competition && comp !== competition)) return [];
      return (await runSubmissions(project.store, id)).map(({ record: r }): SubmissionRow => ({
        run_id: id,
        experiment: run.experiment,
        competition: comp!,
        at: r.at,
        file: r.file,
        sha256: r.sha256,
        message: r.message ?? null,
        dry: r.dry,
        reason: r.reason,
        score: r.score,
        public_score: r.public_score,
        private_score: r.private_score,
        kaggle_status: r.kaggle_status,
      }));
    }),
  );
  return perRun.flat().sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}
