// make predict experiment=<slug>[/<name>] [run=<id>]
// Runs the spec's predict command against the run's latest committed checkpoint; the output
// file is saved with the run.
import { z } from 'zod';
import { foregroundBackend } from './lib/runs/foreground.js';
import { openProject } from './lib/project.js';
import { exitCodeFor } from './lib/runs/describe.js';
import { attemptSpec, pollUntilDone } from './lib/runs/drive-run.js';
import { findRun } from './lib/runs/find-run.js';
import { runKeys } from './lib/runs/run-record.js';
import { requireSecrets } from './lib/secrets/dotenv.js';
import { experimentFile, parseExperimentRef } from './lib/spec/experiment.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';
import { StatusLine } from './lib/ui/status-line.js';

await runMain(async () => {
  const vars = readVars('predict', { experiment: z.string().optional(), run: z.string().optional() });
  const project = await openProject();
  const run = await findRun(project, vars, 'predict');
  const output = run.spec.predict?.output;
  if (!run.command.predict || !output) {
    throw new UserError(`experiment ${run.experiment}: predict: not set in its spec; add predict: { command: python3 predict.py, output: submission.csv }`);
  }
  requireSecrets(project.root, experimentFile(parseExperimentRef(run.experiment)), run.spec.secrets);
  const ui = new StatusLine();
  const backend = await foregroundBackend('local', project, ui);
  ui.say(`predicting with run ${run.run_id}`);
  const handle = await backend.submit(attemptSpec(project, run, 'predict'));
  const started = Date.now();
  const poll = await pollUntilDone(project, backend, run, handle, ui, () => `▸ predict · ${((Date.now() - started) / 1000).toFixed(1)}s`);
  await backend.pull(handle).catch((err: Error) => ui.say(`switchyard: could not pull the predict attempt: ${err.message}`));
  if (poll.state !== 'succeeded') {
    ui.say(`predict ${poll.state}: ${poll.reason} (logs: make logs run=${run.run_id} attempt=predict)`);
    return exitCodeFor(poll.state, poll.exit_code);
  }
  const key = runKeys.output(run.run_id, output);
  if (!(await project.store.stat(key))) {
    throw new UserError(`predict: ${run.command.predict} succeeded but wrote no ${output} in $SWITCHYARD_OUTPUT_DIR`);
  }
  ui.say(`wrote ${project.store.locate(key)}`);
  ui.say(`next: make submit experiment=${run.experiment} dry=1`);
  return 0;
});
