// make submit: a finished run's submission file, checked against the sample submission's
// columns and row count, scored by the competition's local scorer, uploaded to Kaggle unless
// `dry` (or Kaggle is not set up), and recorded under the run (runs/<id>/submissions/<stamp>/)
// and in the ledger either way. A file that does not match is refused before any upload. No
// printing: the verb and the dashboard show the result.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../hash.js';
import { openKaggle } from '../kaggle/api.js';
import { findKaggleAuth } from '../kaggle/credentials.js';
import { csvShape, shapeMismatch } from '../kaggle/csv-shape.js';
import { findSampleSubmission } from '../kaggle/sample-submission.js';
import { submissionJson, type SubmissionRecord } from '../kaggle/submission-record.js';
import { run as runCommand } from '../proc.js';
import type { Project } from '../project.js';
import { runKeys, type RunRecord } from '../runs/run-record.js';
import { recordInLedger } from '../runs/run-store.js';
import { readDotEnv } from '../secrets/dotenv.js';
import { loadChallenge } from '../spec/challenge.js';
import { UserError } from '../ui/errors.js';

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
}

function stamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
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

export async function submitRun(project: Project, run: RunRecord, opts: { dry?: boolean; message?: string } = {}): Promise<SubmitResult> {
  const competitionDir = path.join(project.root, 'competitions', run.experiment.split('/')[0]!);
  const challenge = loadChallenge(competitionDir, path.relative(project.root, competitionDir));
  const file = run.spec.submit?.file ?? run.spec.predict?.output ?? challenge.submit_file;
  const bytes = await project.store.getBytes(runKeys.output(run.run_id, file));
  if (!bytes) throw new UserError(`submit: run ${run.run_id} has no ${file} yet; make predict run=${run.run_id} writes it`);

  const env = { ...process.env, ...readDotEnv(project.root) };
  const blocker = opts.dry
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

  const when = stamp();
  const local = path.join(project.workDir(run.run_id), 'submissions', when, path.basename(file));
  mkdirSync(path.dirname(local), { recursive: true });
  writeFileSync(local, bytes);
  const score = await localScore(challenge.scorer, competitionDir, local);

  const message = opts.message ?? (run.spec.submit?.message || run.run_id);
  const created = api ? await api.submit(challenge.kaggle!, path.basename(file), bytes, message) : null;

  const sha256 = sha256Hex(bytes);
  await project.store.putBytes(runKeys.submission(run.run_id, when, path.basename(file)), bytes);
  const record: SubmissionRecord = {
    run_id: run.run_id,
    file,
    sha256,
    message,
    dry: !created,
    reason: blocker,
    score,
    competition: created ? challenge.kaggle : null,
    kaggle_ref: created?.ref ?? null,
    kaggle_status: created ? 'pending' : null,
    public_score: null,
    private_score: null,
    kaggle_error: null,
    at: new Date().toISOString(),
    scored_at: null,
  };
  await project.store.putBytes(runKeys.submission(run.run_id, when, 'submission.json'), submissionJson(record));
  const scoreValue = typeof score?.score === 'number' ? score.score : null;
  await recordInLedger(project, 'submission.made', {
    run_id: run.run_id,
    file,
    sha256,
    dry: record.dry,
    score: scoreValue,
    ...(created ? { competition: challenge.kaggle!, kaggle_ref: created.ref } : {}),
  });
  return {
    run_id: run.run_id,
    stamp: when,
    record,
    where: project.store.locate(runKeys.submission(run.run_id, when, '')),
    checkedAgainst: sample ? `${sample.name} (${sample.shape.columns.length} columns, ${sample.shape.rows} rows)` : null,
    kaggleMessage: created?.message || null,
  };
}
