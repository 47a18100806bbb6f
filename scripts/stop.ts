// make stop run=<id>: asks the running attempt to checkpoint and stop (SIGTERM, then SIGKILL
// after the grace period) and waits until it has.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { backendForHandle } from './lib/backends/index.js';
import { openProject } from './lib/project.js';
import { loadRun } from './lib/runs/run-store.js';
import { TERMINAL } from './lib/runs/run-record.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('stop', { run: z.string() });
  const project = await openProject();
  const run = await loadRun(project, vars.run);
  if (run.shards?.length) throw new UserError(`stop: run ${run.run_id} is a fleet search; make fleet-stop run=${run.run_id} stops its shards`);
  const last = run.attempts.at(-1);
  if (!last?.handle || last.state !== 'running') throw new UserError(`stop: run ${run.run_id} is not running (${last?.state ?? 'no attempts'})`);
  const backend = await backendForHandle(project, last.handle);
  if ((await backend.poll(last.handle)).state !== 'running') throw new UserError(`stop: run ${run.run_id} is not running`);
  await backend.cancel(last.handle);
  console.log(`stopping ${run.run_id} attempt ${last.n}: waiting for its checkpoint (grace ${run.spec.train.grace_sec}s)`);
  const deadline = Date.now() + (run.spec.train.grace_sec + 30) * 1000;
  while (Date.now() < deadline) {
    const poll = await backend.poll(last.handle);
    if (TERMINAL.has(poll.state)) {
      console.log(`attempt ${last.n} ${poll.state} at checkpoint step ${poll.last_step ?? '-'}; make train experiment=${run.experiment} resumes it`);
      return 0;
    }
    await sleep(250);
  }
  throw new UserError(`stop: run ${run.run_id} did not stop within ${run.spec.train.grace_sec + 30}s`);
});
