// make hosts: every inventory host probed at once over its pooled SSH connection (host keys
// verified): reachable, latency, load, memory, disk free, GPUs (nvidia-smi), tmux sessions and
// its price. On a terminal the table fills in as hosts answer; a dead host is down within its
// connect_timeout and holds up no other.
import { renderHostTable } from './lib/cli/host-table.js';
import { hostIdentity, probeHost, type HostHealth } from './lib/probe/index.js';
import { openProject } from './lib/project.js';
import { runMain } from './lib/ui/errors.js';
import { LiveTable } from './lib/ui/live-table.js';

await runMain(async () => {
  const project = await openProject();
  const names = Object.keys(project.config.hosts);
  if (!names.length) {
    console.log('no hosts yet; add them under hosts in cluster_fleet_config.ts');
    return 0;
  }
  const answered = new Map<string, HostHealth>();
  const table = () => renderHostTable(names.map((n) => answered.get(n) ?? hostIdentity(project.config, n)));
  const live = new LiveTable(process.stdout);
  live.update(table());
  await Promise.all(names.map((n) => probeHost(project, n).then((h) => (answered.set(n, h), live.update(table())))));
  if (live.interactive) {
    live.update(table());
    live.done(); // leaves the finished table on screen
  } else {
    console.log(table());
  }
  return 0;
});
