// make submissions: every recorded Kaggle submission asked for its score (one listing per
// competition), each record under its run updated when Kaggle says something new, and a
// `submission.scored` ledger entry the first time a submission reads complete or error. A
// second poll that learns nothing writes nothing. No printing: the verb and the dashboard show it.
import { openKaggle } from '../kaggle/api.js';
import { applyKaggle, listSubmissions, matchSubmissions, submissionJson, type StoredSubmission } from '../kaggle/submission-record.js';
import { mapLimit } from '../map-limit.js';
import type { Project } from '../project.js';
import { recordInLedger } from '../runs/run-store.js';
import { readDotEnv } from '../secrets/dotenv.js';

export interface SubmissionsResult {
  /** every recorded submission (of `competition` when given), newest first, as updated */
  submissions: StoredSubmission[];
  /** how many were scored (or failed) for the first time in this poll */
  newlyScored: number;
  /** competitions asked */
  polled: string[];
}

/** Every submission recorded under the project's runs, oldest first. */
export async function recordedSubmissions(project: Project): Promise<StoredSubmission[]> {
  const runs = project.db.list();
  const found: StoredSubmission[] = [];
  await mapLimit(runs, 8, async (run) => void found.push(...(await listSubmissions(project.store, run.run_id))));
  return found.sort((a, b) => a.record.at.localeCompare(b.record.at));
}

export async function pollSubmissions(project: Project, opts: { competition?: string } = {}): Promise<SubmissionsResult> {
  const all = (await recordedSubmissions(project)).filter((s) => !opts.competition || s.record.competition === opts.competition);
  const uploaded = all.filter((s) => !s.record.dry && s.record.competition);
  const competitions = [...new Set(uploaded.map((s) => s.record.competition!))].sort();
  let newlyScored = 0;
  if (competitions.length) {
    const env = { ...process.env, ...readDotEnv(project.root) };
    const api = openKaggle(env, 'submissions');
    for (const slug of competitions) {
      const mine = uploaded.filter((s) => s.record.competition === slug);
      const kaggle = await api.submissions(slug);
      const matched = matchSubmissions(mine.map((s) => s.record), kaggle);
      for (const [n, s] of mine.entries()) {
        const k = kaggle[matched[n]!];
        if (!k) continue;
        const { record, changed, finished } = applyKaggle(s.record, k, new Date().toISOString());
        if (!changed) continue;
        await project.store.putBytes(s.key, submissionJson(record));
        s.record = record;
        if (!finished) continue;
        newlyScored++;
        await recordInLedger(project, 'submission.scored', {
          run_id: record.run_id,
          competition: slug,
          kaggle_ref: record.kaggle_ref!,
          status: record.kaggle_status as 'complete' | 'error',
          public_score: record.public_score,
          private_score: record.private_score,
        });
      }
    }
  }
  return { submissions: all.reverse(), newlyScored, polled: competitions };
}
