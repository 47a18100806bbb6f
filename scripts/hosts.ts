// make hosts: the inventory, each host probed in parallel over SSH (host keys verified), with
// the fleets it belongs to.
import { openProject } from './lib/project.js';
import { openRemoteHost } from './lib/remote/open-host.js';
import { runMain } from './lib/ui/errors.js';
import { renderTable } from './lib/ui/table.js';

await runMain(async () => {
  const project = await openProject();
  const names = Object.keys(project.config.hosts);
  if (!names.length) {
    console.log('no hosts yet; add them under hosts in cluster_fleet_config.ts');
    return 0;
  }
  const rows = await Promise.all(
    names.map(async (name) => {
      const entry = project.config.hosts[name]!;
      const t0 = Date.now();
      const reach = await openRemoteHost(project, name)
        .then((h) => h.run(['true'], { timeoutMs: entry.connect_timeout * 1000 + 2000 }))
        .then(() => `ok ${Date.now() - t0} ms`, (err: Error) => `✗ ${err.message.replace(/^ssh \S+: /, '')}`);
      const labels = Object.entries(entry.labels).map(([k, v]) => `${k}=${v}`).join(' ');
      const fleets = Object.entries(project.config.fleets).filter(([, f]) => f.hosts.includes(name)).map(([f]) => f);
      return [name, `${entry.user ? `${entry.user}@` : ''}${entry.host}:${entry.port}`, entry.root, labels || '-', fleets.join(' ') || '-', reach];
    }),
  );
  console.log(renderTable(['HOST', 'ADDRESS', 'ROOT', 'LABELS', 'FLEETS', 'REACHABLE'], rows));
  return 0;
});
