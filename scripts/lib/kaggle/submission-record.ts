// A submission as the store records it: runs/<id>/submissions/<stamp>/submission.json, written
// by make submit and updated by make submissions as Kaggle scores it. The dashboard reads the
// same file, so the field names are a contract.
import type { Store } from '../store/store.js';
import { runKeys } from '../store/run-keys.js';

export type KaggleStatus = 'pending' | 'complete' | 'error';

export interface SubmissionRecord {
  run_id: string;
  /** the run's output file that was submitted */
  file: string;
  sha256: string;
  message: string;
  /** true when nothing was uploaded; `reason` says why */
  dry: boolean;
  reason: string | null;
  /** what the competition's local scorer printed, or null without one */
  score: Record<string, unknown> | null;
  /** the Kaggle competition slug it went to, or null for a dry run */
  competition: string | null;
  /** Kaggle's id of the submission (its `ref`) */
  kaggle_ref: string | null;
  kaggle_status: KaggleStatus | null;
  public_score: number | null;
  private_score: number | null;
  /** Kaggle's error description for a submission it could not score */
  kaggle_error: string | null;
  at: string;
  /** when make submissions first saw it scored (or failed) */
  scored_at: string | null;
}

/** A record written before these fields existed reads as one Kaggle never saw. */
export function parseSubmissionRecord(text: string): SubmissionRecord {
  const raw = JSON.parse(text) as Partial<SubmissionRecord>;
  return {
    ...raw,
    reason: raw.reason ?? null,
    score: raw.score ?? null,
    competition: raw.competition ?? null,
    kaggle_ref: raw.kaggle_ref ?? null,
    kaggle_status: raw.kaggle_status ?? null,
    public_score: raw.public_score ?? null,
    private_score: raw.private_score ?? null,
    kaggle_error: raw.kaggle_error ?? null,
    scored_at: raw.scored_at ?? null,
  } as SubmissionRecord;
}

export function submissionJson(record: SubmissionRecord): string {
  return JSON.stringify(record, null, 2) + '\n';
}

export interface StoredSubmission {
  /** the folder stamp, e.g. 20250101T120000Z */
  stamp: string;
  key: string;
  record: SubmissionRecord;
}

/** A run's submissions, oldest first. */
export async function listSubmissions(store: Store, runId: string): Promise<StoredSubmission[]> {
  const prefix = runKeys.submission(runId, '', '').replace(/\/+$/, '/');
  const keys = (await store.list(prefix)).filter((k) => k.endsWith('/submission.json'));
  const out: StoredSubmission[] = [];
  for (const key of keys) {
    const bytes = await store.getBytes(key);
    if (!bytes) continue;
    out.push({ stamp: key.slice(prefix.length).split('/')[0]!, key, record: parseSubmissionRecord(bytes.toString()) });
  }
  return out;
}

/** The best public score among a run's submissions; `higherIsBetter` follows the metric. */
export function bestPublicScore(records: SubmissionRecord[], higherIsBetter = true): number | null {
  const scores = records.map((r) => r.public_score).filter((s): s is number => typeof s === 'number');
  if (scores.length === 0) return null;
  return higherIsBetter ? Math.max(...scores) : Math.min(...scores);
}
