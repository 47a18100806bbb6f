// A foreground launcher of a sharded run on this machine, for tests of what another shell does to
// the run it follows: make train's open and drive, with the local backend taking shards (its one
// slot of capacity 1, so all shards but one wait queued here). Run in a project folder:
//   node --import tsx test/helpers/shards-launcher.ts <experiment>
// Prints `opened <run_id>`, a line per start and end, and `drove <state> detached=<bool>` as its
// drive returns. Signals are left alone: no signal reaches a fleet's launcher when its units are
// stopped, while make stop signals a local attempt's runner, here this process.
import { hostname } from 'node:os';
import { drive } from '../../scripts/lib/actions/launch.js';
import { closeRun, settledState, wantRun } from '../../scripts/lib/agent/desired.js';
import { agentHome } from '../../scripts/lib/agent/home.js';
import { openBackend } from '../../scripts/lib/backends/index.js';
import { pinExperiment } from '../../scripts/lib/pins/pin-experiment.js';
import { openProject } from '../../scripts/lib/project.js';
import { openRun } from '../../scripts/lib/runs/open-run.js';
import { loadExperiment } from '../../scripts/lib/spec/experiment.js';

for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => {});
const project = await openProject();
const exp = await loadExperiment(project.root, process.argv[2]);
const pinned = await pinExperiment(project.root, project.stateDir, exp);
const backend = await openBackend('local', project);
Object.assign(backend, { capabilities: { ...backend.capabilities, shards: true } });
const opened = await openRun(project, exp, pinned, { backends: ['local'], again: true });
const { run } = opened;
const home = agentHome(project);
await wantRun(home, { run_id: run.run_id, backend: 'local', launched_on: hostname() });
const result = await drive(
  {
    project,
    sink: (e) => {
      if (e.type === 'opened') console.log(`opened ${e.run.run_id}`);
      if (e.type === 'started') console.log(`started unit ${e.unit}`);
      if (e.type === 'ended') console.log(`ended unit ${e.unit} ${e.state}`);
    },
  },
  run,
  backend,
  { how: opened.kind === 'resume' ? 'resume' : 'new', held: true },
);
if (result.kind === 'driven') {
  const settled = settledState(run);
  if (!result.detached && settled.done) await closeRun(home, run.run_id, settled.state, settled.reason);
  console.log(`drove ${result.state} detached=${result.detached}`);
}
opened.release();
process.exit(0);
