// make submissions [competition=<slug>]
// Asks Kaggle for the scores of every recorded submission, records each new score under its
// run and once in the ledger, and lists the submissions.
import { z } from 'zod';
import { pollSubmissions } from './lib/actions/submissions.js';
import { openProject } from './lib/project.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { renderTable } from './lib/ui/table.js';

await runMain(async () => {
  const vars = readVars('submissions', { competition: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a Kaggle competition slug').optional() });
  const project = await openProject();
  const { submissions, newlyScored, polled } = await pollSubmissions(project, { competition: vars.competition });
  if (!submissions.length) {
    console.log(`no submissions recorded${vars.competition ? ` for ${vars.competition}` : ''}; make submit experiment=<slug> makes one`);
    return 0;
  }
  const localScore = (s: Record<string, unknown> | null) => (typeof s?.score === 'number' ? s.score : null);
  const rows = submissions.map(({ stamp, record: r }) => [
    r.run_id,
    stamp,
    r.dry ? 'dry run' : r.competition,
    r.dry ? '-' : (r.kaggle_status ?? 'unknown'),
    r.public_score,
    r.private_score,
    localScore(r.score),
    r.kaggle_error ?? r.message,
  ]);
  console.log(renderTable(['RUN', 'SUBMITTED (UTC)', 'COMPETITION', 'STATUS', 'PUBLIC', 'PRIVATE', 'LOCAL', 'MESSAGE'], rows));
  if (polled.length) console.log(`asked Kaggle about ${polled.join(', ')}: ${newlyScored} newly scored`);
  const unconfirmed = [...new Set(submissions.filter((s) => s.record.kaggle_status === 'unconfirmed').map((s) => s.record.run_id))];
  if (unconfirmed.length)
    console.log(`unconfirmed: an upload make submit began and did not see confirmed; make submit run=<id> again (same file) asks Kaggle and completes it, uploading only if Kaggle has none: ${unconfirmed.join(', ')}`);
  return 0;
});
