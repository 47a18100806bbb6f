// make ssh host=<name> [run=<id>]: an interactive shell on the host inside Switchyard's tmux,
// attached to the run's session when run= is given. Host keys are verified as everywhere.
import { spawnSync } from 'node:child_process';
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { attemptSession, TMUX_SOCKET } from './lib/remote/host-layout.js';
import { openRemoteHost } from './lib/remote/open-host.js';
import { loadRun } from './lib/runs/run-store.js';
import { readVars } from './lib/spec/make-vars.js';
import { sshArgv } from './lib/ssh/target.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('ssh', { host: z.string().optional(), run: z.string().optional() });
  const project = await openProject();
  let hostName = vars.host;
  let session = 'switchyard';
  if (vars.run) {
    const run = await loadRun(project, vars.run);
    if (run.sharded) throw new UserError(`ssh: run ${vars.run} is a fleet search; give host= (make status run=${vars.run} shows where each shard runs)`);
    const last = run.units[0]?.attempts.at(-1);
    if (last?.backend !== 'ssh') throw new UserError(`ssh: run ${vars.run} did not run on an ssh host`);
    hostName ??= String(last.handle?.host);
    session = attemptSession(vars.run, last.n);
  }
  const host = await openRemoteHost(project, hostName);
  const argv = sshArgv(host.target, ['tmux', '-L', TMUX_SOCKET, 'new-session', '-A', '-s', session]);
  argv.splice(1, 0, '-t');
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  return r.status ?? 1;
});
