// make predict experiment=<slug>[/<name>] [run=<id>]; make predict-smoke: from the smoke run of make train-1
// Runs the spec's predict command against the run's latest committed checkpoint; the output
// file is saved with the run.
import { z } from 'zod';
import { predict } from './lib/actions/predict.js';
import { restoredLine } from './lib/cli/run-lines.js';
import { openProject } from './lib/project.js';
import { exitCodeFor } from './lib/cli/describe.js';
import { FINISHED, findRun } from './lib/runs/find-run.js';
import { runKeys } from './lib/runs/run-record.js';
import { requireSecrets } from './lib/secrets/dotenv.js';
import { experimentFile, parseExperimentRef } from './lib/spec/experiment.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';
import { StatusLine } from './lib/ui/status-line.js';

void runMain(async () => {
  const vars = readVars('predict', { experiment: z.string().optional(), run: z.string().optional(), smoke: Flag.optional() });
  const project = await openProject();
  const smoke = vars.smoke ?? false;
  const run = await findRun(project, vars, smoke ? 'predict-smoke' : 'predict', smoke ? { ...FINISHED, name: 'finished smoke run', smoke } : FINISHED);
  requireSecrets(project.root, experimentFile(parseExperimentRef(run.experiment)), run.spec.secrets);
  const ui = new StatusLine();
  ui.say(`predicting with run ${run.run_id}`);
  const started = Date.now();
  const poll = await predict(project, run, {
    echo: (stream, data) => ui.write(stream === 'stdout' ? process.stdout : process.stderr, data),
    onPoll: () => ui.update(`▸ predict · ${((Date.now() - started) / 1000).toFixed(1)}s`),
  }).finally(() => ui.done());
  for (const e of poll.events) if (e?.type === 'restored') ui.say(restoredLine(e.step, 'predict'));
  if (poll.state !== 'succeeded') {
    ui.say(`predict ${poll.state}: ${poll.reason} (logs: make logs run=${run.run_id} attempt=predict)`);
    return exitCodeFor(poll.state, poll.exit_code);
  }
  const key = runKeys.output(run.run_id, run.spec.predict!.output);
  if (!(await project.store.stat(key))) throw new UserError(`predict: ${String(run.command.predict)} succeeded but wrote no ${run.spec.predict!.output} in $SWITCHYARD_OUTPUT_DIR`);
  ui.say(`wrote ${project.store.locate(key)}`);
  // experiment= would submit the experiment's newest finished run, which need not be the one given.
  const submit = vars.run ? `run=${run.run_id}` : `experiment=${run.experiment}`;
  ui.say(smoke ? `the route works; the full run: make train experiment=${run.experiment}` : `next: make submit ${submit} dry=1`);
  return 0;
});
