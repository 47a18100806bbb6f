// make agent-status: whether this state folder's agent runs, since when, its last tick, and the
// runs it carries (open) or has closed. Exit 0 when it runs, 3 when it does not.
import { describeAgent, lookAtAgent } from './lib/agent/agent-lock.js';
import { desiredRuns } from './lib/agent/desired.js';
import { installedAgent } from './lib/agent/install.js';
import { openProject } from './lib/project.js';
import { runMain } from './lib/ui/errors.js';
import { renderTable } from './lib/ui/table.js';

await runMain(async () => {
  const project = await openProject();
  const health = lookAtAgent(project.stateDir);
  console.log(describeAgent(health));
  const installed = installedAgent(project.root);
  if (installed) console.log(`installed: ${installed}`);
  const wanted = desiredRuns(project.stateDir).sort((a, b) => a.since.localeCompare(b.since));
  const driven = new Set(health.state === 'stopped' ? [] : health.info.runs);
  const rows = wanted.map((d) => [d.run_id, d.backend, d.closed ? `closed: ${d.closed.state}` : driven.has(d.run_id) ? 'driving' : 'open', d.closed?.reason ?? null]);
  if (rows.length) console.log(renderTable(['RUN', 'BACKEND', 'AGENT', 'WHY'], rows));
  return health.state === 'running' ? 0 : 3;
});
