// make logs run=<id> [shard=<i>] [attempt=<n>|predict] [stream=stdout|stderr] [follow=1]
// The runner masks secrets in what it writes; this masks them again on the way to the screen
// (a value added to .env later, a log written by an older runner).
import { z } from 'zod';
import { runLogs } from './lib/actions/logs.js';
import { openProject } from './lib/project.js';
import { loadRun } from './lib/runs/run-store.js';
import { readDotEnv } from './lib/secrets/dotenv.js';
import { Redactor, secretsToMask } from './lib/secrets/redact.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

void runMain(async () => {
  const vars = readVars('logs', {
    run: z.string(),
    attempt: z.union([z.literal('predict'), z.coerce.number().int().min(1)]).optional(),
    stream: z.enum(['stdout', 'stderr']).default('stdout'),
    follow: Flag.optional(),
    shard: z.coerce.number().int().min(0).optional(),
  });
  const project = await openProject();
  const run = await loadRun(project, vars.run);
  const out = new Redactor(secretsToMask(run.spec.secrets, readDotEnv(project.root), process.env)).pipe((b) => process.stdout.write(b));
  for await (const chunk of runLogs(project, run, { shard: vars.shard, attempt: vars.attempt, stream: vars.stream, follow: vars.follow ?? false })) out.write(Buffer.from(chunk));
  out.end();
  return 0;
});
