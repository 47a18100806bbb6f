// One probe round: every host asked at once, ONE remote command each over its pooled
// connection, each under its own deadline (its connect_timeout), so a dead host is `down` within
// it and never holds up the others.
import type { Config } from '../config/load-config.js';
import { openRemoteHost } from '../remote/open-host.js';
import { SshError } from '../ssh/ssh-errors.js';
import { UserError } from '../ui/errors.js';
import type { Workspace } from '../workspace.js';
import { parseProbe, type GpuHealth, type GpuReading, type ProbeReading } from './parse-probe.js';
import { gpuTimeoutSec, probeArgv } from './probe-script.js';

export interface HostHealth extends Omit<ProbeReading, 'gpuHealth'>, HostIdentity {
  state: 'up' | 'down';
  /** why the host is down (one line), else null */
  error: string | null;
  /** the probe's round trip in ms (a first probe includes the SSH handshake) */
  latencyMs: number | null;
  gpuHealth: GpuHealth;
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

export interface HostIdentity {
  host: string;
  /** `user@host:port` */
  address: string;
  fleets: string[];
  /** the host's price_per_hour (USD), null where none is set */
  pricePerHour: number | null;
}

/** What the inventory says of a host: where it is, its fleets (in config order), its price. */
export function hostIdentity(config: Config, name: string): HostIdentity {
  const entry = config.hosts[name]!;
  return {
    host: name,
    address: `${entry.user ? `${entry.user}@` : ''}${entry.host}:${entry.port}`,
    fleets: Object.entries(config.fleets).filter(([, f]) => f.hosts.includes(name)).map(([fleet]) => fleet),
    pricePerHour: entry.price_per_hour ?? null,
  };
}

/** Probes one inventory host; past an unknown name it never throws: a host that does not answer in time is `down`. */
export async function probeHost(project: Pick<Workspace, 'config'>, name: string): Promise<HostHealth> {
  checkHostNames(project.config, [name]);
  const entry = project.config.hosts[name]!;
  const started = Date.now();
  const base = { ...hostIdentity(project.config, name), probedAt: new Date(started).toISOString() };
  const gpuLimit = gpuTimeoutSec(entry.connect_timeout);
  try {
    const remote = await openRemoteHost(project, name);
    const r = await remote.pool.exec(remote.target, probeArgv(remote.root, gpuLimit), { timeoutMs: entry.connect_timeout * 1000 });
    return { ...base, state: 'up', error: null, latencyMs: Date.now() - started, ...parseProbe(r.stdout, gpuLimit) };
  } catch (err) {
    const why = err instanceof SshError && err.kind === 'timeout'
      ? `no answer within its ${entry.connect_timeout}s connect_timeout`
      : (err as Error).message.split('\n')[0]!.replace(/^ssh \S+ \([^)]*\): /, '');
    return { ...base, state: 'down', error: why, latencyMs: null, ...EMPTY, gpuHealth: 'unknown' };
  }
}

/** Throws a one-line UserError for the first name that is not an inventory host. */
export function checkHostNames(config: Config, names: readonly string[]): void {
  const known = Object.keys(config.hosts);
  const unknown = names.find((n) => !known.includes(n));
  if (unknown !== undefined) {
    throw new UserError(`host: unknown host ${JSON.stringify(unknown)} (known: ${known.join(', ') || 'none'}); add it under hosts in cluster_fleet_config.ts`);
  }
}

/** One round over `names` (default: the whole inventory), all at once; results in the order asked. */
export async function probeHosts(project: Pick<Workspace, 'config'>, names: readonly string[] = Object.keys(project.config.hosts)): Promise<HostHealth[]> {
  checkHostNames(project.config, names);
  return Promise.all(names.map((name) => probeHost(project, name)));
}
