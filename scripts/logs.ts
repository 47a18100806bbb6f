// make logs run=<id> [shard=<i>] [attempt=<n>|predict] [stream=stdout|stderr] [follow=1]
// The runner masks secrets in what it writes; this masks them again on the way to the screen
// (a value added to .env later, a log written by an older runner).
import { z } from 'zod';
import { backendForHandle } from './lib/backends/index.js';
import { openProject } from './lib/project.js';
import { loadRun } from './lib/runs/run-store.js';
import { runKeys, shardUnit } from './lib/runs/run-record.js';
import { readDotEnv } from './lib/secrets/dotenv.js';
import { Redactor, secretsToMask } from './lib/secrets/redact.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('logs', {
    run: z.string(),
    attempt: z.union([z.literal('predict'), z.coerce.number().int().min(1)]).optional(),
    stream: z.enum(['stdout', 'stderr']).default('stdout'),
    follow: Flag.optional(),
    shard: z.coerce.number().int().min(0).optional(),
  });
  const project = await openProject();
  const run = await loadRun(project, vars.run);
  // A fleet search keeps attempts per shard.
  if (run.shards?.length && vars.shard === undefined) throw new UserError(`logs: run ${run.run_id} is a fleet search; add shard=<0-${run.shards.length - 1}>`);
  const shard = vars.shard === undefined ? null : run.shards?.[vars.shard];
  if (shard === undefined) throw new UserError(`logs: run ${run.run_id} has no shard ${vars.shard}`);
  const attempts = shard ? shard.attempts : run.attempts;
  const unit = shard ? shardUnit(run.run_id, shard.index) : run.run_id;
  const attempt = vars.attempt === undefined ? attempts.at(-1) : attempts.find((a) => a.n === vars.attempt);
  const out = new Redactor(secretsToMask(run.spec.secrets, readDotEnv(project.root), process.env)).pipe((b) => process.stdout.write(b));
  if (vars.attempt === 'predict' || !attempt?.handle) {
    const which = vars.attempt ?? 'predict';
    const bytes = await project.store.getBytes(runKeys.attemptFile(unit, which, `${vars.stream}.log`));
    if (!bytes) throw new UserError(`logs: run ${run.run_id} has no ${vars.stream} log for attempt ${which}`);
    out.write(bytes);
    out.end();
    return 0;
  }
  for await (const chunk of (await backendForHandle(project, attempt.handle)).logs(attempt.handle, { follow: vars.follow ?? false, stream: vars.stream })) {
    out.write(Buffer.from(chunk));
  }
  out.end();
  return 0;
});
