// The sample submission a submission is checked against: the file challenge.json names under
// `sample_submission` (in the competition folder), else the competition's own from Kaggle (the
// data file whose name says submission, e.g. sample_submission.csv or gender_submission.csv).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Challenge } from '../spec/challenge.js';
import { UserError } from '../ui/errors.js';
import type { KaggleApi } from './api.js';
import { csvShape, type CsvShape } from './csv-shape.js';
import type { KaggleDataFile } from './responses.js';

export interface SampleSubmission {
  /** for people: the local path or `<slug>/<file> on Kaggle` */
  name: string;
  shape: CsvShape;
}

/** The competition's sample submission among its data files: a CSV named *submission*, the shortest name first. */
export function sampleAmong(files: KaggleDataFile[]): KaggleDataFile | null {
  const csv = files.filter((f) => /submission/i.test(path.posix.basename(f.name)) && /\.csv$/i.test(f.name));
  return csv.sort((a, b) => a.name.length - b.name.length || a.name.localeCompare(b.name))[0] ?? null;
}

/**
 * The sample to check against, or null when there is none to be had: no local file named and
 * no Kaggle to ask (`api` null, as for a dry run). Kaggle without such a file is refused: an
 * upload is never unchecked.
 */
export async function findSampleSubmission(competitionDir: string, label: string, challenge: Challenge, api: KaggleApi | null): Promise<SampleSubmission | null> {
  if (challenge.sample_submission) {
    const file = path.join(competitionDir, challenge.sample_submission);
    if (!existsSync(file)) throw new UserError(`${path.join(label, 'challenge.json')}: sample_submission: ${challenge.sample_submission} does not exist in ${label}; fix the path or remove the field`);
    return { name: path.join(label, challenge.sample_submission), shape: csvShape(readFileSync(file, 'utf8')) };
  }
  if (!api || !challenge.kaggle) return null;
  const sample = sampleAmong(await api.dataFiles(challenge.kaggle));
  if (!sample) {
    throw new UserError(`${challenge.kaggle} on Kaggle has no sample submission to check against; name one in ${path.join(label, 'challenge.json')} as sample_submission: "data/sample_submission.csv"`);
  }
  const bytes = await api.fileBytes(challenge.kaggle, sample.name);
  if (bytes.subarray(0, 2).toString('latin1') === 'PK') {
    throw new UserError(`${challenge.kaggle}/${sample.name} comes zipped from Kaggle; unzip it into ${label}/data/ and name it in challenge.json as sample_submission`);
  }
  return { name: `${challenge.kaggle}/${sample.name} on Kaggle`, shape: csvShape(bytes.toString('utf8')) };
}
