// make status [experiment=<slug>[/<name>]]: one row per run, newest first. Running attempts
// are asked for their live state, so a run whose orchestrator died shows as lost.
import { z } from 'zod';
import { backendForHandle } from './lib/backends/index.js';
import { openProject } from './lib/project.js';
import { runState } from './lib/runs/run-record.js';
import { parseExperimentRef } from './lib/spec/experiment.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { renderTable } from './lib/ui/table.js';

await runMain(async () => {
  const vars = readVars('status', { experiment: z.string().optional() });
  const project = await openProject();
  let ref: string | undefined;
  if (vars.experiment) {
    const { slug, name } = parseExperimentRef(vars.experiment);
    ref = name === 'default' ? slug : `${slug}/${name}`;
  }
  const runs = project.db.list(ref);
  if (!runs.length) {
    console.log(`no runs yet${ref ? ` for ${ref}` : ''}; start one with make train experiment=penguins`);
    return 0;
  }
  const rows = [];
  for (const run of runs) {
    const last = run.attempts.at(-1);
    let state: string = runState(run);
    let metrics = last?.metrics ?? null;
    if (last?.state === 'running' && last.handle) {
      const live = await backendForHandle(project, last.handle).then((b) => b.poll(last.handle!)).catch(() => null);
      state = live ? live.state : 'unknown';
      metrics = live?.metrics ?? metrics;
    }
    if (run.shards?.length) {
      // A fleet search: its state and attempts summed over its shards (make fleet-status has the detail).
      const attempts = run.shards.reduce((n, s) => n + s.attempts.length, 0);
      const done = run.shards.filter((s) => s.attempts.at(-1)?.state === 'succeeded').length;
      rows.push([run.run_id, run.experiment, `${state} (${done}/${run.shards.length} shards)`, attempts, `fleet ${run.fleet ?? '-'}`, null, null, null, run.created_at.slice(0, 16).replace('T', ' ')]);
      continue;
    }
    const step = typeof metrics?.step === 'number' || typeof metrics?.step === 'string' ? metrics.step : null;
    const loss = typeof metrics?.loss === 'number' ? metrics.loss.toPrecision(4) : null;
    rows.push([run.run_id, run.experiment, state, run.attempts.length, last?.backend ?? '-', step, loss, last?.last_step ?? null, run.created_at.slice(0, 16).replace('T', ' ')]);
  }
  console.log(renderTable(['RUN', 'EXPERIMENT', 'STATE', 'ATTEMPTS', 'BACKEND', 'STEP', 'LOSS', 'CKPT STEP', 'CREATED (UTC)'], rows));
  return 0;
});
