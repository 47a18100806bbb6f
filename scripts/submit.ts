// make submit experiment=<slug>[/<name>] [run=<id>] [dry=1] [message="..."]
// Scores the run's submission file with the competition's local scorer, uploads it with the
// Kaggle CLI when that is installed and configured (and dry=1 is not given), and records the
// submission under the run and in the ledger either way.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { run as runCommand } from './lib/proc.js';
import { findRun } from './lib/runs/find-run.js';
import { kaggleSubmit, kaggleUnavailable } from './lib/kaggle/cli.js';
import { runKeys, runState } from './lib/runs/run-record.js';
import { recordInLedger } from './lib/runs/run-store.js';
import { readDotEnv } from './lib/secrets/dotenv.js';
import { Redactor, secretsToMask } from './lib/secrets/redact.js';
import { loadChallenge } from './lib/spec/challenge.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';
import { sha256Hex } from './lib/hash.js';

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

await runMain(async () => {
  const vars = readVars('submit', {
    experiment: z.string().optional(),
    run: z.string().optional(),
    dry: Flag.optional(),
    message: z.string().optional(),
  });
  const project = await openProject();
  const run = await findRun(project, vars, 'submit', (r) => runState(r) === 'succeeded');
  const competitionDir = path.join(project.root, 'competitions', run.experiment.split('/')[0]!);
  const challenge = loadChallenge(competitionDir, path.relative(project.root, competitionDir));
  const file = run.spec.submit?.file ?? run.spec.predict?.output ?? challenge.submit_file;
  const bytes = await project.store.getBytes(runKeys.output(run.run_id, file));
  if (!bytes) throw new UserError(`submit: run ${run.run_id} has no ${file} yet; make predict run=${run.run_id} writes it`);

  const when = stamp();
  const local = path.join(project.workDir(run.run_id), 'submissions', when, path.basename(file));
  mkdirSync(path.dirname(local), { recursive: true });
  writeFileSync(local, bytes);
  const score = await localScore(challenge.scorer, competitionDir, local);
  if (score) console.log(`local score: ${JSON.stringify(score)}`);

  const env = { ...process.env, ...readDotEnv(project.root) };
  const message = vars.message ?? run.spec.submit?.message ?? run.run_id;
  const blocker = vars.dry ? 'dry=1 was given' : !challenge.kaggle ? 'challenge.json names no Kaggle competition' : kaggleUnavailable(env);
  let uploaded: string | null = null;
  // The CLI's answer is recorded and shown: masked like every other output.
  if (!blocker) uploaded = new Redactor(secretsToMask(run.spec.secrets, env)).text(await kaggleSubmit(challenge.kaggle!, local, message, env));

  const sha256 = sha256Hex(bytes);
  await project.store.putBytes(runKeys.submission(run.run_id, when, path.basename(file)), bytes);
  const record = { run_id: run.run_id, file, sha256, message, dry: !uploaded, reason: blocker, score, kaggle_output: uploaded, at: new Date().toISOString() };
  await project.store.putBytes(runKeys.submission(run.run_id, when, 'submission.json'), JSON.stringify(record, null, 2) + '\n');
  const scoreValue = typeof score?.score === 'number' ? score.score : null;
  await recordInLedger(project, 'submission.made', { run_id: run.run_id, file, sha256, dry: !uploaded, score: scoreValue });
  const where = project.store.locate(runKeys.submission(run.run_id, when, ''));
  console.log(uploaded ? `uploaded to Kaggle (${challenge.kaggle}): ${uploaded}` : `dry run: nothing was uploaded (${blocker}); recorded in ${where}`);
  return 0;
});
