// make submit: a finished run's submission file, checked against the sample submission's
// columns and row count, scored by the competition's local scorer, uploaded to Kaggle unless
// `dry` (or Kaggle is not set up), and recorded under the run (runs/<id>/submissions/<stamp>/)
// and in the ledger either way. A file that does not match is refused before any upload.
// An upload is never sent twice: its record is written, unconfirmed, before it, and a later
// submit of the same bytes that finds such a record asks Kaggle before uploading again. No
// printing: the verb and the dashboard show the result.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../hash.js';
import { openKaggle, type KaggleApi } from '../kaggle/api.js';
import { findKaggleAuth } from '../kaggle/credentials.js';
import { csvShape, shapeMismatch } from '../kaggle/csv-shape.js';
import { findSampleSubmission } from '../kaggle/sample-submission.js';
import type { KaggleSubmission } from '../kaggle/responses.js';
import {
  isUnconfirmedUpload,
  listSubmissions,
  matchSubmissions,
  nextStamp,
  submissionJson,
  type StoredSubmission,
  type SubmissionRecord,
} from '../kaggle/submission-record.js';
import { readLedger } from '../ledger/ledger.js';
import { run as runCommand } from '../proc.js';
import type { Project } from '../project.js';
import { runKeys, type RunRecord } from '../runs/run-record.js';
import { recordInLedger } from '../runs/run-store.js';
import { readDotEnv } from '../secrets/dotenv.js';
import { loadChallenge } from '../spec/challenge.js';
import { UserError } from '../ui/errors.js';
import { recordBestScore, recordKaggleAnswer } from './submissions.js';

export interface SubmitResult {
  run_id: string;
  /** the submission's folder under runs/<id>/submissions/ */
  stamp: string;
  record: SubmissionRecord;
  /** where the submission is recorded, for people */
  where: string;
  /** the sample submission the file was checked against, or null when none was at hand (a dry run without a local one) */
  checkedAgainst: string | null;
  /** what Kaggle said on accepting the upload */
  kaggleMessage: string | null;
  /**
   * `new`: uploaded; `again`: uploaded, settling an earlier submit of these bytes that was cut
   * off before Kaggle had them; `found`: Kaggle had them from that earlier submit, so nothing
   * was uploaded; null: a dry run
   */
  upload: 'new' | 'again' | 'found' | null;
}

async function localScore(scorer: string[] | null, cwd: string, file: string): Promise<Record<string, unknown> | null> {
  if (!scorer) return null;
  const r = await runCommand([...scorer, file], { cwd, allowFail: true });
  const last = r.stdout.toString().trim().split('\n').at(-1) ?? '';
  if (r.code !== 0) throw new UserError(`submission rejected by the local scorer: ${(r.stderr.trim() || last).split('\n').at(-1)}`);
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    return { output: last };
  }
}

/**
 * What a submit of `run` needs before anything is written: the file's bytes, checked against the
 * sample submission, and Kaggle's client, or why nothing will be uploaded (`blocker`).
 */
async function prepare(project: Project, run: RunRecord, dry: boolean | undefined) {
  const competitionDir = path.join(project.root, 'competitions', run.experiment.split('/')[0]!);
  const challenge = loadChallenge(competitionDir, path.relative(project.root, competitionDir));
  const file = run.spec.submit?.file ?? run.spec.predict?.output ?? challenge.submit_file;
  const bytes = await project.store.getBytes(runKeys.output(run.run_id, file));
  if (!bytes) throw new UserError(`submit: run ${run.run_id} has no ${file} yet; make predict run=${run.run_id} writes it`);

  const env = { ...process.env, ...readDotEnv(project.root) };
  const blocker = dry
    ? 'dry=1 was given'
    : !challenge.kaggle
      ? 'challenge.json names no Kaggle competition'
      : !findKaggleAuth(env)
        ? 'no Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY in .env'
        : null;
  const api = blocker ? null : openKaggle(env, 'submit');
  const label = path.relative(project.root, competitionDir);
  const sample = await findSampleSubmission(competitionDir, label, challenge, api);
  if (sample) {
    const wrong = shapeMismatch(`${file} of run ${run.run_id}`, csvShape(bytes.toString('utf8')), sample.shape, sample.name);
    if (wrong) throw new UserError(wrong);
  }
  return { competitionDir, challenge, file, bytes, blocker, api, sample };
}

export async function submitRun(project: Project, run: RunRecord, opts: { dry?: boolean; message?: string } = {}): Promise<SubmitResult> {
  const { competitionDir, challenge, file, bytes, blocker, api, sample } = await prepare(project, run, opts.dry);
  const name = path.basename(file);
  const sha256 = sha256Hex(bytes);
  const earlier = await listSubmissions(project.store, run.run_id);
  // the newest unconfirmed upload of these bytes, from a submit that was cut off
  const cut = api ? earlier.filter((s) => isUnconfirmedUpload(s.record, file, sha256, challenge.kaggle!)).at(-1) : undefined;
  const when = cut?.stamp ?? nextStamp(earlier.map((s) => s.stamp));
  const local = path.join(project.workDir(run.run_id), 'submissions', when, name);
  mkdirSync(path.dirname(local), { recursive: true });
  writeFileSync(local, bytes);
  const score = await localScore(challenge.scorer, competitionDir, local);

  const record: SubmissionRecord = {
    run_id: run.run_id,
    file,
    sha256,
    message: opts.message ?? (run.spec.submit?.message || run.run_id),
    dry: !api,
    reason: blocker,
    score,
    competition: api ? challenge.kaggle! : null,
    kaggle_ref: null,
    kaggle_status: api ? 'unconfirmed' : null,
    public_score: null,
    private_score: null,
    kaggle_error: null,
    at: new Date().toISOString(),
    scored_at: null,
  };
  await project.store.putBytes(runKeys.submission(run.run_id, when, name), bytes);
  const stored = { stamp: when, key: runKeys.submission(run.run_id, when, 'submission.json'), record };
  const sent = api ? await upload(project, api, stored, bytes, cut, earlier) : null;
  if (!sent) await complete(project, stored, record, false);
  return {
    run_id: run.run_id,
    stamp: when,
    record: stored.record,
    where: project.store.locate(runKeys.submission(run.run_id, when, '')),
    checkedAgainst: sample ? `${sample.name} (${sample.shape.columns.length} columns, ${sample.shape.rows} rows)` : null,
    kaggleMessage: sent?.kaggleMessage ?? null,
    upload: sent?.upload ?? null,
  };
}

/**
 * Sends `stored` to Kaggle, or settles the earlier submit of the same bytes that was `cut` off:
 * when Kaggle lists a submission of it, its record is completed from that and nothing is sent.
 * Otherwise the record is written, unconfirmed, before the upload and completed after it, so a
 * process that dies (or a store write that fails) after Kaggle took the bytes leaves a record
 * the next make submit settles. Updates `stored`.
 */
async function upload(
  project: Project,
  api: KaggleApi,
  stored: StoredSubmission,
  bytes: Buffer,
  cut: StoredSubmission | undefined,
  earlier: StoredSubmission[],
): Promise<{ upload: 'new' | 'again' | 'found'; kaggleMessage: string | null }> {
  const slug = stored.record.competition!;
  const found = cut ? await findAtKaggle(api, cut, earlier) : null;
  if (found && cut) {
    await complete(project, stored, { ...cut.record, kaggle_ref: found.ref || null, kaggle_status: 'pending' }, true);
    // Kaggle may have scored it meanwhile: kept as make submissions keeps a score.
    if ((await recordKaggleAnswer(project, stored, found)) !== 'nothing')
      await recordBestScore(project, stored.record.run_id, [...earlier.filter((s) => s.stamp !== stored.stamp).map((s) => s.record), stored.record]);
    return { upload: 'found', kaggleMessage: null };
  }
  const { record } = stored;
  await project.store.putBytes(stored.key, submissionJson(record));
  if (!cut) await recordInLedger(project, 'submission.started', { run_id: record.run_id, stamp: stored.stamp, file: record.file, sha256: record.sha256, competition: slug });
  const created = await api.submit(slug, path.basename(record.file), bytes, record.message);
  await complete(project, stored, { ...record, kaggle_ref: created.ref, kaggle_status: 'pending' }, !!cut);
  return { upload: cut ? 'again' : 'new', kaggleMessage: created.message || null };
}

/** The Kaggle submission that is the `cut` record's upload, or null when Kaggle lists none. */
async function findAtKaggle(api: KaggleApi, cut: StoredSubmission, earlier: StoredSubmission[]): Promise<KaggleSubmission | null> {
  const kaggle = await api.submissions(cut.record.competition!);
  // The run's other records claim theirs first (by ref, else in order), so none is taken twice.
  const records = earlier.filter((s) => s.record.competition === cut.record.competition);
  const i = matchSubmissions(records.map((s) => s.record), kaggle)[records.indexOf(cut)]!;
  return kaggle[i] ?? null;
}

/**
 * The ledger's `submission.made`, then `record` in the store. In this order: a process that dies
 * between the two leaves the record unconfirmed, which the next make submit settles; the other
 * way round it would leave a complete record with no ledger entry, and nothing would ever write
 * it. A `resumed` submission may have its entry already, from the submit that was cut off.
 */
async function complete(project: Project, stored: StoredSubmission, record: SubmissionRecord, resumed: boolean): Promise<void> {
  const made = resumed && (await readLedger(project.ledgerPath)).some((e) => e.type === 'submission.made' && e.run_id === record.run_id && e.stamp === stored.stamp);
  if (!made)
    await recordInLedger(project, 'submission.made', {
      run_id: record.run_id,
      stamp: stored.stamp,
      file: record.file,
      sha256: record.sha256,
      dry: record.dry,
      score: typeof record.score?.score === 'number' ? record.score.score : null,
      ...(record.competition ? { competition: record.competition, kaggle_ref: record.kaggle_ref } : {}),
    });
  await project.store.putBytes(stored.key, submissionJson(record));
  stored.record = record;
}
