// An inventory host by name, with one SSH connection pool per process. ssh2 is imported only
// here, lazily, so verbs that never touch a remote host never load it.
import type { Workspace } from '../workspace.js';
import type { SshPool } from '../ssh/pool.js';
import { checkRemotePath } from '../quote.js';
import { targetFromConfig } from '../ssh/target.js';
import { atExit, UserError } from '../ui/errors.js';
import { RemoteHost } from './remote-host.js';

// One pool per process, created once even when several hosts are opened concurrently.
let pool: Promise<SshPool> | null = null;

export function sharedPool(): Promise<SshPool> {
  pool ??= import('../ssh/pool.js').then(({ SshPool }) => {
    atExit(closeSharedPool);
    return new SshPool();
  });
  return pool;
}

/** Closes pooled connections so the process can exit. */
export async function closeSharedPool(): Promise<void> {
  const open = pool;
  pool = null;
  await (await open)?.close();
}

/** `root` overrides the host's own project folder (a fleet's root). */
export async function openRemoteHost(project: Pick<Workspace, 'config'>, name: string | undefined, opts: { root?: string } = {}): Promise<RemoteHost> {
  const known = Object.keys(project.config.hosts);
  if (!name) throw new UserError(`host: required, e.g. host=${known[0] ?? 'vast'} (hosts are listed in cluster_fleet_config.ts)`);
  const entry = project.config.hosts[name];
  if (!entry) {
    throw new UserError(`host: unknown host ${JSON.stringify(name)} (known: ${known.join(', ') || 'none'}); add it under hosts in cluster_fleet_config.ts`);
  }
  const target = targetFromConfig(name, entry, { connectTimeoutSec: entry.connect_timeout });
  return new RemoteHost(target, checkRemotePath(opts.root ?? entry.root), await sharedPool());
}
