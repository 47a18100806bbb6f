// A submission as the store records it: runs/<id>/submissions/<stamp>/submission.json, written
// by make submit and updated by make submissions as Kaggle scores it. The dashboard reads the
// same file, so the field names are a contract.
import type { Store } from '../store/store.js';
import { runKeys } from '../store/run-keys.js';

export type KaggleStatus = 'pending' | 'complete' | 'error';
/**
 * `unconfirmed`: make submit wrote the record and began the upload, and nothing has confirmed
 * that Kaggle has it (the upload is under way, or was cut off); the next make submit of the same
 * bytes asks Kaggle and settles it. The others are what Kaggle says.
 */
export type SubmissionStatus = 'unconfirmed' | KaggleStatus;

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
  kaggle_status: SubmissionStatus | null;
  public_score: number | null;
  private_score: number | null;
  /** Kaggle's error description for a submission it could not score */
  kaggle_error: string | null;
  /** when make submit began it (before the upload) */
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

/** Whether `record` is an upload of these bytes of `file` to `competition` that Kaggle has not confirmed. */
export function isUnconfirmedUpload(record: SubmissionRecord, file: string, sha256: string, competition: string): boolean {
  return record.kaggle_status === 'unconfirmed' && record.file === file && record.sha256 === sha256 && record.competition === competition;
}

/** A stamp's time in ms: 20250101T120000.123Z, or 20250101T120000Z as make submit wrote them before; NaN for another name. */
function stampTime(stamp: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\.\d{3})?Z$/.exec(stamp);
  return m ? Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}Z`) : NaN;
}

/**
 * The folder of a new submission: its time to the millisecond, later than every folder `taken`,
 * so two submits of a run in the same moment never share one and the folders sort by time.
 */
export function nextStamp(taken: string[], now = new Date()): string {
  const latest = Math.max(-Infinity, ...taken.map(stampTime).filter((t) => !Number.isNaN(t)));
  return new Date(Math.max(now.getTime(), latest + 1)).toISOString().replace(/[-:]/g, '');
}

export interface StoredSubmission {
  /** the folder stamp, e.g. 20250101T120000.123Z */
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

/** Whether a smaller score is better for a metric of this name (errors and losses). */
export function lowerIsBetter(metric: string | null): boolean {
  return !!metric && /(error|loss|rmse|mae|mse|rmsle|mape|smape|deviance|distance|wrmsse)/i.test(metric);
}

/** The best public score among a run's submissions; `higherIsBetter` follows the metric. */
export function bestPublicScore(records: SubmissionRecord[], higherIsBetter = true): number | null {
  const scores = records.map((r) => r.public_score).filter((s): s is number => typeof s === 'number');
  if (scores.length === 0) return null;
  return higherIsBetter ? Math.max(...scores) : Math.min(...scores);
}

/**
 * The record with what Kaggle now says of it: status, scores, error. `changed` when any of
 * those differ; `finished` when this is the first time it reads complete or error (the one
 * moment make submissions records in the ledger).
 */
export function applyKaggle(
  record: SubmissionRecord,
  kaggle: { ref: string; status: KaggleStatus; publicScore: number | null; privateScore: number | null; error: string | null },
  now: string,
): { record: SubmissionRecord; changed: boolean; finished: boolean } {
  const next: SubmissionRecord = {
    ...record,
    kaggle_ref: record.kaggle_ref ?? kaggle.ref,
    kaggle_status: kaggle.status,
    public_score: kaggle.publicScore,
    private_score: kaggle.privateScore,
    kaggle_error: kaggle.status === 'error' ? (kaggle.error ?? 'Kaggle could not score it') : null,
  };
  const wasFinal = record.kaggle_status === 'complete' || record.kaggle_status === 'error';
  const finished = !wasFinal && kaggle.status !== 'pending';
  if (finished) next.scored_at = now;
  const changed = (['kaggle_ref', 'kaggle_status', 'public_score', 'private_score', 'kaggle_error'] as const).some((k) => next[k] !== record[k]);
  return { record: next, changed, finished };
}

/**
 * Which of Kaggle's submissions each record is: by its ref, or, for a record Kaggle gave no ref,
 * the oldest unclaimed one with its file name and message made at or after it. Returns an index
 * into `kaggle` per record, -1 where none fits.
 */
export function matchSubmissions(
  records: SubmissionRecord[],
  kaggle: { ref: string; fileName: string | null; description: string | null; date: string | null }[],
): number[] {
  const claimed = new Set<number>();
  const out = records.map((r) => {
    const i = r.kaggle_ref ? kaggle.findIndex((k) => k.ref === r.kaggle_ref) : -1;
    if (i >= 0) claimed.add(i);
    return i;
  });
  const byAge = kaggle.map((k, i) => ({ k, i })).sort((a, b) => Date.parse(a.k.date ?? '') - Date.parse(b.k.date ?? ''));
  records.forEach((r, n) => {
    if (r.kaggle_ref) return;
    const hit = byAge.find(({ k, i }) => !claimed.has(i) && k.fileName === r.file.split('/').at(-1) && (k.description ?? '') === r.message && Date.parse(k.date ?? '') >= Date.parse(r.at) - 60_000);
    if (hit) claimed.add(hit.i), (out[n] = hit.i);
  });
  return out;
}
