// make agent-status: whether the agent of this checkout's home (a state folder or the store) runs, since when, its last tick, and the
// runs it carries (open) or has closed. Exit 0 when it runs, 3 when it does not.
import { describeAgent, lookAtAgent } from './lib/agent/agent-lock.js';
import { desiredRuns } from './lib/agent/desired.js';
import { agentHome } from './lib/agent/home.js';
import { installedAgent } from './lib/agent/install.js';
import { openProject } from './lib/project.js';
import { runMain } from './lib/ui/errors.js';
import { renderTable } from './lib/ui/table.js';

void runMain(async () => {
  const project = await openProject();
  const home = agentHome(project);
  const health = await lookAtAgent(home);
  console.log(describeAgent(health));
  const installed = installedAgent(project.root);
  if (installed) console.log(`installed: ${installed}`);
  if (home.kind === 'store') console.log(`home: ${home.location}`);
  const wanted = (await desiredRuns(home)).sort((a, b) => a.since.localeCompare(b.since));
  const driven = new Set(health.state === 'stopped' ? [] : health.info.runs);
  const rows = wanted.map((d) => [d.run_id, d.backend, d.closed ? `closed: ${d.closed.state}${d.stop ? ', stopping' : ''}` : driven.has(d.run_id) ? 'driving' : 'open', d.closed?.reason ?? null]);
  if (rows.length) console.log(renderTable(['RUN', 'BACKEND', 'AGENT', 'WHY'], rows));
  return health.state === 'running' ? 0 : 3;
});
