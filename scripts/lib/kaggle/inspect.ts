// What Kaggle says of a competition, gathered for make competition-inspect and
// make competition-new: its metadata, its data files, and its sample submission's shape.
import type { KaggleApi } from './api.js';
import { csvShape, type CsvShape } from './csv-shape.js';
import type { KaggleCompetition, KaggleDataFile } from './responses.js';
import { sampleAmong } from './sample-submission.js';

export interface CompetitionFacts {
  competition: KaggleCompetition;
  files: KaggleDataFile[];
  /** the sample submission's name and shape; `zipped` when Kaggle serves it compressed (not read) */
  sample: { name: string; shape: CsvShape | null; zipped: boolean } | null;
}

export async function inspectCompetition(api: KaggleApi, slug: string): Promise<CompetitionFacts> {
  const competition = await api.competition(slug);
  const files = await api.dataFiles(slug);
  const found = sampleAmong(files);
  let sample: CompetitionFacts['sample'] = null;
  if (found) {
    const bytes = await api.fileBytes(slug, found.name);
    const zipped = bytes.subarray(0, 2).toString('latin1') === 'PK';
    sample = { name: found.name, shape: zipped ? null : csvShape(bytes.toString('utf8')), zipped };
  }
  return { competition, files, sample };
}
