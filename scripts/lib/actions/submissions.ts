// Every submission make submit recorded: the ledger says which runs have any (one read instead of
// a listing per run), the store holds each one's record (runs/<id>/submissions/<stamp>/submission.json).
import type { Project } from '../project.js';
import { readLedger } from '../ledger/ledger.js';
import { runKeys } from '../runs/run-record.js';

export interface SubmissionRow {
  run_id: string;
  experiment: string;
  competition: string;
  /** when it was made (ISO) */
  at: string;
  file: string;
  sha256: string;
  message: string | null;
  /** nothing was uploaded (dry=1, or no Kaggle) */
  dry: boolean;
  /** the local scorer's answer */
  score: Record<string, unknown> | null;
  /** the leaderboard's, once Kaggle has scored it */
  public_score: number | null;
  private_score: number | null;
  kaggle_status: string | null;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() && Number.isFinite(Number(v)) ? Number(v) : null);

/** Newest first; only `competition`'s when given. */
export async function listSubmissions(project: Project, competition?: string): Promise<SubmissionRow[]> {
  const ids = new Set<string>();
  for (const e of await readLedger(project.ledgerPath).catch(() => [])) if (e.type === 'submission.made' && typeof e.run_id === 'string') ids.add(e.run_id);
  const rows: SubmissionRow[] = [];
  await Promise.all(
    [...ids].map(async (id) => {
      const run = project.db.get(id);
      if (!run) return;
      const comp = run.experiment.split('/')[0]!;
      if (competition && comp !== competition) return;
      const prefix = runKeys.submission(id, '', '').replace(/\/\/$/, '/');
      const keys = (await project.store.list(prefix)).filter((k) => k.endsWith('/submission.json'));
      for (const key of keys) {
        const bytes = await project.store.getBytes(key);
        if (!bytes) continue;
        let r: Record<string, unknown>;
        try {
          r = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
        } catch {
          continue;
        }
        rows.push({
          run_id: id,
          experiment: run.experiment,
          competition: comp,
          at: typeof r.at === 'string' ? r.at : '',
          file: String(r.file ?? ''),
          sha256: String(r.sha256 ?? ''),
          message: typeof r.message === 'string' ? r.message : null,
          dry: r.dry === true,
          score: r.score && typeof r.score === 'object' ? (r.score as Record<string, unknown>) : null,
          public_score: num(r.public_score),
          private_score: num(r.private_score),
          kaggle_status: typeof r.kaggle_status === 'string' ? r.kaggle_status : null,
        });
      }
    }),
  );
  return rows.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}
