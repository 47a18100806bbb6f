// Submissions: every one make submit recorded (the ledger says which runs have any, one read
// instead of a store listing per run; the store holds each record), and make submissions:
// every recorded Kaggle submission asked for its score (one listing per competition), each
// record under its run updated when Kaggle says something new, and a `submission.scored` ledger
// entry the first time a submission reads complete or error. A second poll that learns nothing
// writes nothing. An unconfirmed record (an upload make submit began and did not see through) is
// listed as it is and left to the next make submit of its bytes. No printing: the verbs and the
// dashboard show it.
import path from 'node:path';
import { openKaggle } from '../kaggle/api.js';
import type { KaggleSubmission } from '../kaggle/responses.js';
import {
  applyKaggle,
  bestPublicScore,
  listSubmissions as runSubmissions,
  lowerIsBetter,
  matchSubmissions,
  submissionJson,
  type StoredSubmission,
  type SubmissionRecord,
} from '../kaggle/submission-record.js';
import { readLedger } from '../ledger/ledger.js';
import { mapLimit } from '../map-limit.js';
import type { Project } from '../project.js';
import { loadRun, recordInLedger, saveRun } from '../runs/run-store.js';
import { loadChallenge } from '../spec/challenge.js';
import { readDotEnv } from '../secrets/dotenv.js';

/** The runs the ledger says have a submission, made or begun. */
async function runsWithSubmissions(project: Project): Promise<string[]> {
  const ids = new Set<string>();
  for (const e of await readLedger(project.ledgerPath).catch(() => []))
    if ((e.type === 'submission.made' || e.type === 'submission.started') && typeof e.run_id === 'string') ids.add(e.run_id);
  return [...ids];
}

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
  const perRun = await Promise.all(
    (await runsWithSubmissions(project)).map(async (id) => {
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
  const found: StoredSubmission[] = [];
  await mapLimit(await runsWithSubmissions(project), 8, async (id) => void found.push(...(await runSubmissions(project.store, id))));
  return found.sort((a, b) => a.record.at.localeCompare(b.record.at));
}

export async function pollSubmissions(project: Project, opts: { competition?: string } = {}): Promise<SubmissionsResult> {
  const all = (await recordedSubmissions(project)).filter((s) => !opts.competition || s.record.competition === opts.competition);
  const uploaded = all.filter((s) => !s.record.dry && s.record.competition && s.record.kaggle_status !== 'unconfirmed');
  const competitions = [...new Set(uploaded.map((s) => s.record.competition!))].sort();
  let newlyScored = 0;
  const rescored = new Set<string>();
  if (competitions.length) {
    const env = { ...process.env, ...readDotEnv(project.root) };
    const api = openKaggle(env, 'submissions');
    for (const slug of competitions) {
      const mine = uploaded.filter((s) => s.record.competition === slug);
      const kaggle = await api.submissions(slug);
      const matched = matchSubmissions(mine.map((s) => s.record), kaggle);
      for (const [n, s] of mine.entries()) {
        const k = kaggle[matched[n]!];
        const news = k ? await recordKaggleAnswer(project, s, k) : 'nothing';
        if (news !== 'nothing') rescored.add(s.record.run_id);
        if (news === 'finished') newlyScored++;
      }
    }
  }
  for (const runId of rescored) await recordBestScore(project, runId, all.filter((s) => s.record.run_id === runId).map((s) => s.record));
  return { submissions: all.reverse(), newlyScored, polled: competitions };
}

/**
 * What Kaggle says of one recorded submission, kept: its record rewritten (and `stored.record`
 * updated) when anything changed, and `submission.scored` in the ledger the first time it reads
 * complete or error. Says which of those happened.
 */
export async function recordKaggleAnswer(project: Project, stored: StoredSubmission, k: KaggleSubmission): Promise<'nothing' | 'changed' | 'finished'> {
  const { record, changed, finished } = applyKaggle(stored.record, k, new Date().toISOString());
  if (!changed) return 'nothing';
  await project.store.putBytes(stored.key, submissionJson(record));
  stored.record = record;
  if (!finished) return 'changed';
  await recordInLedger(project, 'submission.scored', {
    run_id: record.run_id,
    competition: record.competition!,
    kaggle_ref: record.kaggle_ref!,
    status: record.kaggle_status as 'complete' | 'error',
    public_score: record.public_score,
    private_score: record.private_score,
  });
  return 'finished';
}

/**
 * Keeps a run's best public score in its record, so listings show it from the run index
 * without reading any submission. Which score is best follows the competition's metric.
 */
export async function recordBestScore(project: Project, runId: string, records: SubmissionRecord[]): Promise<void> {
  const run = await loadRun(project, runId);
  const slug = run.experiment.split('/')[0]!;
  let metric: string | null = null;
  try {
    metric = loadChallenge(path.join(project.root, 'competitions', slug), `competitions/${slug}`).metric;
  } catch {
    // a competition folder gone or broken: the larger score counts as better
  }
  const best = bestPublicScore(records, !lowerIsBetter(metric));
  if (best === null || run.public_score === best) return;
  run.public_score = best;
  await saveRun(project, run);
}
