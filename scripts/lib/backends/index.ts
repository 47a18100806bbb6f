// Backend name → implementation, and the check of a spec's resources against what a backend
// offers, before any run is opened. Each backend lives in its own file behind one interface;
// heavy ones (ssh2) load only when chosen.
import path from 'node:path';
import type { BackendName } from '../config/define-config.js';
import type { Config } from '../config/load-config.js';
import { entryNamed } from '../config/entry-named.js';
import type { Workspace } from '../workspace.js';
import type { ExperimentSpec } from '../spec/experiment.js';
import { UserError } from '../ui/errors.js';
import type { Backend, Handle } from './backend.js';
import { LocalBackend } from './local.js';

export interface BackendContext {
  /** where an in-process attempt's output goes (the live display) */
  echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
  /** the inventory host, for the ssh backend */
  host?: string;
  /** the fleet, for the fleet backend */
  fleet?: string;
  /** the `batch:` entry, for the gcp-batch backend (optional when only one is configured) */
  batch?: string;
  /** the `clusters:` entry, for the slurm backend (optional when only one is configured) */
  cluster?: string;
  /** local attempts run as processes of their own, outliving this one (the agent, detach=1) */
  detached?: boolean;
}

export async function openBackend(name: BackendName, project: Workspace, ctx: BackendContext = {}): Promise<Backend> {
  const { config } = project;
  switch (name) {
    case 'local':
      return new LocalBackend({
        root: project.root,
        store: project.store,
        workDir: project.workDir,
        echo: ctx.echo,
        detached: ctx.detached ? { runnerBundle: path.join(project.root, 'dist', 'runner', 'run-attempt.mjs') } : undefined,
      });
    case 'ssh':
    case 'fleet': {
      const [{ SshBackend }, { openRemoteHost }] = await Promise.all([import('./ssh.js'), import('../remote/open-host.js')]);
      const common = { projectRoot: project.root, store: project.store, runnerBundle: path.join(project.root, 'dist', 'runner', 'run-attempt.mjs') };
      if (name === 'ssh') {
        const host = entryNamed(config, 'hosts', ctx.host);
        const entry = config.hosts[host]!;
        return new SshBackend({ ...common, name, hosts: [host], openHost: (h) => openRemoteHost(project, h), perHost: 1, lostAfterMs: entry.connect_timeout * 1000, gpus: entry.gpus, syncParallel: 1 });
      }
      const fleet = entryNamed(config, 'fleets', ctx.fleet);
      const f = config.fleets[fleet]!;
      return new SshBackend({
        ...common,
        name,
        fleet,
        hosts: f.hosts,
        openHost: (h) => openRemoteHost(project, h, { root: f.root }),
        perHost: f.per_host,
        lostAfterMs: f.lost_after_sec * 1000,
        gpus: Math.min(...f.hosts.map((h) => config.hosts[h]!.gpus)),
        syncParallel: f.sync_parallel,
        syncExcludes: f.sync_excludes,
        sessionPrefix: f.session_prefix,
        outputDir: f.output_dir,
        bootstrapCommand: `make bootstrap fleet=${fleet}`,
      });
    }
    case 'gcp-batch': {
      const [{ GcpBatchBackend }, { openProjectBatchClient }] = await Promise.all([import('./gcp-batch.js'), import('../batch/client.js')]);
      const entry = entryNamed(config, 'batch', ctx.batch);
      const store = config.batch[entry]!.store ?? config.defaults.store;
      if (store !== project.store.url) {
        throw new UserError(`batch.${entry}.store: ${store} is not the project's store ${project.store.url}; Batch tasks write the run's store, so leave store unset or set it to defaults.store`);
      }
      return new GcpBatchBackend({
        entry,
        config,
        projectRoot: project.root,
        stateDir: project.stateDir,
        store: project.store,
        runnerBundle: path.join(project.root, 'dist', 'runner', 'run-attempt.mjs'),
        openClient: () => openProjectBatchClient(project.root),
      });
    }
    case 'slurm': {
      const [{ SlurmBackend }, { LocalLogin, SshLogin }] = await Promise.all([import('./slurm.js'), import('../slurm/login-node.js')]);
      const cluster = entryNamed(config, 'clusters', ctx.cluster);
      const entry = config.clusters[cluster]!;
      const runnerBundle = path.join(project.root, 'dist', 'runner', 'run-attempt.mjs');
      if (entry.login === 'local') {
        return new SlurmBackend({ cluster, entry, login: new LocalLogin({ root: project.root, stateDir: project.stateDir, runnerBundle, workDir: project.workDir }) });
      }
      const { openRemoteHost } = await import('../remote/open-host.js');
      const host = await openRemoteHost(project, entry.login, { root: entry.root });
      return new SlurmBackend({ cluster, entry, login: new SshLogin(host, { projectRoot: project.root, store: project.store, runnerBundle }) });
    }
    default:
      throw new UserError(`backend: "${name}" is not available in this version; use backend=local, ssh, fleet, gcp-batch or slurm`);
  }
}

/** The backend that can find an existing attempt again, from its persisted handle. */
export function backendForHandle(project: Workspace, handle: Handle, ctx: BackendContext = {}): Promise<Backend> {
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return openBackend(handle.backend, project, { ...ctx, host: text(handle.host), fleet: text(handle.fleet), batch: text(handle.entry), cluster: text(handle.cluster) });
}

/**
 * The backend a submit went to, from the slot recorded with it (an attempt whose handle was never
 * saved): a slot names its host, `batch:` entry or cluster; a fleet's host is one of `fleet`'s.
 */
export function backendForSlot(project: Workspace, name: BackendName, slot: string, fleet?: string): Promise<Backend> {
  const ctx: Record<BackendName, BackendContext> = { local: {}, ssh: { host: slot }, fleet: { fleet }, 'gcp-batch': { batch: slot }, slurm: { cluster: slot } };
  return openBackend(name, project, ctx[name]);
}

/** Every configured place to run, with its GPUs: for naming the ones that fit a spec. */
function configuredGpus(config: Config, local: number): { where: string; gpus: number }[] {
  return [
    { where: 'backend=local', gpus: local },
    ...Object.entries(config.hosts).map(([h, e]) => ({ where: `backend=ssh host=${h}`, gpus: e.gpus })),
    ...Object.entries(config.fleets).map(([f, e]) => ({ where: `backend=fleet fleet=${f}`, gpus: Math.min(...e.hosts.map((h) => config.hosts[h]!.gpus)) })),
    ...Object.entries(config.batch).map(([b, e]) => ({ where: `backend=gcp-batch batch=${b}`, gpus: e.accelerators.reduce((n, a) => n + a.count, 0) })),
    ...Object.entries(config.clusters).map(([c, e]) => ({ where: `backend=slurm cluster=${c}`, gpus: e.gpus })),
  ];
}

/**
 * Refuses, before a run is opened, a spec asking for what the chosen backend does not offer:
 * one line naming what is missing and where it is.
 */
export function checkResources(file: string, spec: ExperimentSpec, backend: Backend, config: Config): void {
  const want = spec.resources;
  const have = backend.capabilities;
  const where = backend.name === 'local' ? 'this machine' : `backend ${backend.name}`;
  if (want.gpus > have.gpus) {
    const local = backend.name === 'local' ? have.gpus : 0;
    const fits = configuredGpus(config, local).filter((c) => c.gpus >= want.gpus).map((c) => c.where);
    const fix = fits.length ? `run it with ${fits.join(' or ')}` : `declare gpus: ${want.gpus} on a host under hosts in cluster_fleet_config.ts`;
    throw new UserError(`${file}: resources.gpus: ${want.gpus} asked, ${where} has ${have.gpus}; ${fix}`);
  }
  if (want.spot && !have.spot) {
    throw new UserError(`${file}: resources.spot: ${where} has no spot capacity; drop spot: true, or use a backend that has it (gcp-batch, or slurm with a preemptible cluster)`);
  }
  backend.checkSpec?.(file, spec);
}
