// make logs run=<id> [shard=<i>] [attempt=<n>|predict] [stream=stdout|stderr] [follow=1]
// The runner masks secrets in what it writes; this masks them again on the way to the screen
// (a value added to .env later, a log written by an older runner).
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { runLogs } from './lib/actions/logs.js';
import { openProject } from './lib/project.js';
import { loadRun } from './lib/runs/run-store.js';
import { readDotEnv } from './lib/secrets/dotenv.js';
import { Redactor, secretsToMask } from './lib/secrets/redact.js';
import { CUT_SHORT } from './lib/sleep-unless.js';
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
  const redactor = new Redactor(secretsToMask(run.spec.secrets, readDotEnv(project.root), process.env));
  // A reader gone (`| head`: EPIPE closes stdout) ends the follow at once, file, channel or poll.
  const reading = new AbortController();
  process.stdout.once('close', () => reading.abort(CUT_SHORT));
  const log = runLogs(project, run, { shard: vars.shard, attempt: vars.attempt, stream: vars.stream, follow: vars.follow ?? false, signal: reading.signal });
  // At the reader's pace: stdout into a pipe is written asynchronously, and a reader behind (`| less`)
  // holds the log where it is instead of this process buffering what it has not taken.
  await pipeline(Readable.from(log, { objectMode: false }), redactor.stream(), process.stdout, { end: false }).catch((err: unknown) => {
    if (!reading.signal.aborted) throw err;
  });
  return 0;
});
