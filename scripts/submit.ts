// make submit experiment=<slug>[/<name>] [run=<id>] [dry=1] [message="..."]
// Scores the run's submission file with the competition's local scorer, uploads it to Kaggle
// (unless dry=1), and records the submission under the run and in the ledger either way.
import { z } from 'zod';
import { submitRun } from './lib/actions/submit.js';
import { openProject } from './lib/project.js';
import { findRun } from './lib/runs/find-run.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('submit', {
    experiment: z.string().optional(),
    run: z.string().optional(),
    dry: Flag.optional(),
    message: z.string().optional(),
  });
  const project = await openProject();
  const run = await findRun(project, vars, 'submit');
  const { record, where, checkedAgainst, kaggleMessage, upload } = await submitRun(project, run, { dry: vars.dry, message: vars.message });
  if (checkedAgainst) console.log(`matches the sample submission ${checkedAgainst}`);
  if (record.score) console.log(`local score: ${JSON.stringify(record.score)}`);
  if (record.dry) console.log(`dry run: nothing was uploaded (${record.reason}); recorded in ${where}`);
  else {
    const at = `${record.competition}${record.kaggle_ref ? `, submission ${record.kaggle_ref}` : ''}`;
    if (upload === 'found') console.log(`not uploaded again: Kaggle already has this file from an earlier make submit that was cut off (${at}); recorded in ${where}`);
    else {
      if (upload === 'again') console.log('an earlier make submit of this file was cut off before Kaggle had it');
      console.log(`uploaded to Kaggle (${at})${kaggleMessage ? `: ${kaggleMessage}` : ''}; recorded in ${where}`);
    }
    console.log('next: make submissions (its public score, once Kaggle has scored it)');
  }
  return 0;
});
