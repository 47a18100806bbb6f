// make competition-inspect competition=<slug>
// What Kaggle says of a competition: title, evaluation metric, deadline, data files and their
// sizes, and the sample submission's columns and rows.
import { z } from 'zod';
import { findRoot } from './lib/config/load-config.js';
import { openKaggle } from './lib/kaggle/api.js';
import { inspectCompetition } from './lib/kaggle/inspect.js';
import { readDotEnv } from './lib/secrets/dotenv.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { formatBytes } from './lib/ui/format.js';
import { renderTable } from './lib/ui/table.js';

await runMain(async () => {
  const vars = readVars('competition-inspect', { competition: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a Kaggle competition slug') });
  const env = { ...process.env, ...readDotEnv(findRoot()) };
  const { competition: c, files, sample } = await inspectCompetition(openKaggle(env, 'competition-inspect'), vars.competition);
  console.log(`${c.title} (${c.slug})`);
  if (c.url) console.log(`  url:       ${c.url}`);
  console.log(`  metric:    ${c.metric ?? 'not said'}`);
  console.log(`  deadline:  ${c.deadline ?? 'none'}`);
  if (c.category || c.reward) console.log(`  category:  ${[c.category, c.reward].filter(Boolean).join(', ')}`);
  if (c.maxDailySubmissions) console.log(`  submissions a day: ${c.maxDailySubmissions}${c.submissionsDisabled ? ' (submissions are closed)' : ''}`);
  const total = files.reduce((n, f) => n + f.size, 0);
  console.log(`files (${files.length}, ${formatBytes(total)}):`);
  if (files.length) console.log(renderTable(['  FILE', 'SIZE'], files.map((f) => [`  ${f.name}`, formatBytes(f.size)])));
  if (!sample) console.log('sample submission: none among the files');
  else if (!sample.shape) console.log(`sample submission: ${sample.name} (zipped on Kaggle; its columns are not read)`);
  else console.log(`sample submission: ${sample.name}: columns ${sample.shape.columns.join(', ')}; ${sample.shape.rows} rows`);
  console.log(`next: make competition-new competition=${c.slug}`);
  return 0;
});
