// make agent-install: keeps this project's agent running, as a systemd user unit, or where
// systemd does not run for this user, as a tmux session that restarts it.
import { installAgent } from './lib/agent/install.js';
import { openProject } from './lib/project.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const project = await openProject();
  console.log(await installAgent(project.root, project.stateDir));
  console.log('make agent-status shows whether it runs and its last tick');
  return 0;
});
