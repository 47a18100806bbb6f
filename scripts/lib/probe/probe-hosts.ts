// One probe round: every host asked at once, ONE remote command each over its pooled
// connection, each under its own deadline (its connect_timeout), so a dead host is `down` within
// it and never holds up the others.
import type { Config } from '../config/load-config.js';
import { openRemoteHost } from '../remote/open-host.js';
import { UserError } from '../ui/errors.js';
import type { Workspace } from '../workspace.js';
import { parseProbe, type GpuHealth, type GpuReading, type ProbeReading } from './parse-probe.js';
import { gpuTimeoutSec, probeArgv } from './probe-script.js';

export interface HostHealth extends Omit<ProbeReading, 'gpuHealth'> {
  host: string;
  /** `user@host:port` */
  address: string;
  fleets: string[];
  state: 'up' | 'down';
  /** why the host is down (one line), else null */
  error: string | null;
  /** the probe's round trip in ms (a first probe includes the SSH handshake) */
  latencyMs: number | null;
  gpuHealth: GpuHealth;
  /** the host's price_per_hour (USD), null where none is set */
  pricePerHour: number | null;
  /** ISO time the probe started */
  probedAt: string;
}

export type { GpuHealth, GpuReading };

const EMPTY: Omit<ProbeReading, 'gpuHealth'> = {
  load1: null,
  cpus: null,
  memTotalBytes: null,
  memAvailBytes: null,
  diskFreeBytes: null,
  diskTotalBytes: null,
  gpuError: null,
  gpus: [],
  tmux: [],
};

/** The fleets a host belongs to, in config order. */
function fleetsOf(config: Config, host: string): string[] {
  return Object.entries(config.fleets).filter(([, f]) => f.hosts.includes(host)).map(([name]) => name);
}

/** Probes one inventory host (a name probeHosts checked); never throws: a host that does not answer in time is `down`. */
export async function probeHost(project: Pick<Workspace, 'config'>, name: string): Promise<HostHealth> {
  const entry = project.config.hosts[name]!;
  const started = Date.now();
  const base = {
    host: name,
    address: `${entry.user ? `${entry.user}@` : ''}${entry.host}:${entry.port}`,
    fleets: fleetsOf(project.config, name),
    pricePerHour: entry.price_per_hour ?? null,
    probedAt: new Date(started).toISOString(),
  };
  const gpuLimit = gpuTimeoutSec(entry.connect_timeout);
  try {
    const remote = await openRemoteHost(project as Workspace, name);
    const r = await remote.pool.exec(remote.target, probeArgv(remote.root, gpuLimit), { timeoutMs: entry.connect_timeout * 1000 });
    return { ...base, state: 'up', error: null, latencyMs: Date.now() - started, ...parseProbe(r.stdout, gpuLimit) };
  } catch (err) {
    const why = (err as Error).message.split('\n')[0]!.replace(/^ssh \S+ \([^)]*\): /, '').replace(/^ssh \S+: /, '');
    return { ...base, state: 'down', error: why, latencyMs: null, ...EMPTY, gpuHealth: 'unknown' };
  }
}

/** One round over `names` (default: the whole inventory), all at once; results in the order asked. */
export function probeHosts(project: Pick<Workspace, 'config'>, names: readonly string[] = Object.keys(project.config.hosts)): Promise<HostHealth[]> {
  const known = Object.keys(project.config.hosts);
  const unknown = names.find((n) => !known.includes(n));
  if (unknown !== undefined) {
    return Promise.reject(new UserError(`host: unknown host ${JSON.stringify(unknown)} (known: ${known.join(', ') || 'none'}); add it under hosts in cluster_fleet_config.ts`));
  }
  return Promise.all(names.map((name) => probeHost(project, name)));
}
