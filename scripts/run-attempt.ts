// The runner as a program: what a backend starts on its worker (over ssh in tmux, in a Batch
// task, in an sbatch script). It reads the attempt spec, runs the attempt, and exits with the
// experiment's exit code; SIGTERM from outside (a preemption) checkpoints and ends the attempt
// as preempted, and so does SIGUSR1 (SLURM's signal before a job's time limit: a timeout there).
// Built twice: into dist/scripts/ like every verb, and self-contained into
// dist/runner/run-attempt.mjs, which is what gets shipped to workers.
//
//   node run-attempt.mjs --spec <attempt.json> --root <project dir> --work <run work dir> [--output <dir, from $HOME>]
//   node run-attempt.mjs --pin-data <dir> [--cache <file>]   (prints the data pin as JSON)
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AttemptSpec } from './lib/runner/attempt-spec.js';
import type { AttemptRunner } from './lib/runner/attempt-runner.js';
import { runMain } from './lib/ui/errors.js';
import { exitCodeFor } from './lib/cli/describe.js';

type StopRequest = (runner: AttemptRunner) => void;

/**
 * Answers the stop signals from the runner's first moment, and returns what hands them to it.
 * A signal that comes while the runner is still loading (its store library, its checkpoint
 * code) is kept and applied once the runner exists: by node's default it would end the process
 * without a status, which a poll reports as lost, and a lost attempt is resumed where a stopped
 * one must not be.
 */
function holdStopSignals(grace_sec: number): (runner: AttemptRunner) => void {
  let runner: AttemptRunner | null = null;
  const pending: StopRequest[] = [];
  const on = (signal: NodeJS.Signals, request: StopRequest) => process.on(signal, () => (runner ? request(runner) : pending.push(request)));
  on('SIGTERM', (r) => r.requestStop('preempt'));
  on('SIGINT', (r) => r.requestStop('cancel'));
  on('SIGHUP', (r) => r.requestStop('preempt'));
  // Under SLURM, USR1 comes `grace` seconds before the job's time limit (--signal=B:USR1@<grace>;
  // SLURM may send it up to a minute early), or from `scancel --signal=USR1` (a stop, a notice of
  // preemption). Either way the attempt checkpoints and stops: near the deadline the sbatch
  // script exported, as a timeout, else as preempted.
  on('SIGUSR1', (r) => {
    const deadline = Number(process.env.SWITCHYARD_SLURM_DEADLINE);
    const late = deadline > 0 && Date.now() / 1000 >= deadline - grace_sec - 90;
    if (late) r.requestStop('timeout', "reached the SLURM job's time limit (SIGUSR1 before it)");
    else r.requestStop('preempt', 'the runner was sent SIGUSR1');
  });
  return (r) => {
    runner = r;
    for (const request of pending.splice(0)) request(r);
  };
}

await runMain(async () => {
  const { values } = parseArgs({
    options: {
      spec: { type: 'string' },
      root: { type: 'string' },
      work: { type: 'string' },
      output: { type: 'string' },
      'pin-data': { type: 'string' },
      cache: { type: 'string' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (values['pin-data']) {
    // Bootstrap checks a host's copy of the data against the data pin with the same code.
    const { pinData } = await import('./lib/pins/data-manifest.js');
    const { root, files, bytes } = await pinData({ dir: values['pin-data'], cacheFile: values.cache, include: values.include, exclude: values.exclude });
    process.stdout.write(JSON.stringify({ root, files, bytes }) + '\n');
    return 0;
  }
  if (!values.spec || !values.root || !values.work) throw new Error('usage: run-attempt --spec <file> --root <dir> --work <dir>');
  const spec = JSON.parse(readFileSync(values.spec, 'utf8')) as AttemptSpec;
  const releaseStops = holdStopSignals(spec.grace_sec);
  // Loaded only now, with the signals answered: these are most of the runner's start-up.
  const [{ AttemptRunner }, { openStore }, { readSecretsFile }] = await Promise.all([
    import('./lib/runner/attempt-runner.js'),
    import('./lib/store/open-store.js'),
    import('./lib/secrets/secrets-file.js'),
  ]);
  const root = path.resolve(values.root);
  const runner = new AttemptRunner(spec, {
    root,
    workDir: path.resolve(values.work),
    // like every path in a host's config, relative to the login directory
    outputDir: values.output ? path.resolve(os.homedir(), values.output) : undefined,
    store: await openStore(spec.store, root, spec.store_s3 ?? undefined, spec.secrets_file ? readSecretsFile(path.resolve(root, spec.secrets_file)) : {}),
    echo: (stream, data) => (stream === 'stdout' ? process.stdout : process.stderr).write(data),
    liveView: true,
  });
  releaseStops(runner);
  const status = await runner.run();
  return exitCodeFor(status.state, status.exit_code);
});
