// make logs run=<id> [shard=<i>] [attempt=<n>|predict] [stream=stdout|stderr] [follow=1]
import { z } from 'zod';
import { runLogs } from './lib/actions/logs.js';
import { openProject } from './lib/project.js';
import { loadRun } from './lib/runs/run-store.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';

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
  for await (const chunk of runLogs(project, run, { shard: vars.shard, attempt: vars.attempt, stream: vars.stream, follow: vars.follow ?? false })) process.stdout.write(chunk);
  return 0;
});
