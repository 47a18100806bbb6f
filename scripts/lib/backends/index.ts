// Backend name → implementation. Each backend lives in its own file behind one interface.
import path from 'node:path';
import type { BackendName } from '../config/define-config.js';
import type { Project } from '../project.js';
import type { Handle } from '../runs/run-record.js';
import { UserError } from '../ui/errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';

export interface BackendContext {
  /** where a foreground attempt's output goes (the live display) */
  echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
  /** the inventory host, for the ssh backend */
  host?: string;
  /** the fleet, for the fleet backend */
  fleet?: string;
}

export async function openBackend(name: BackendName, project: Project, ctx: BackendContext = {}): Promise<Backend> {
  switch (name) {
    case 'local':
      return new LocalBackend({ root: project.root, store: project.store, workDir: project.workDir, echo: ctx.echo });
    case 'ssh': {
      const [{ SshBackend }, { openRemoteHost }] = await Promise.all([import('./ssh.js'), import('../remote/open-host.js')]);
      return new SshBackend({
        host: await openRemoteHost(project, ctx.host),
        projectRoot: project.root,
        store: project.store,
        runnerBundle: runnerBundle(project),
      });
    }
    case 'fleet': {
      const [{ SshBackend }, { FleetBackend }, { openRemoteHost }] = await Promise.all([import('./ssh.js'), import('./fleet.js'), import('../remote/open-host.js')]);
      const known = Object.keys(project.config.fleets);
      if (!ctx.fleet) throw new UserError(`fleet: required with backend=fleet, e.g. fleet=${known[0] ?? 'lab'} (fleets are listed in cluster_fleet_config.ts)`);
      const config = project.config.fleets[ctx.fleet];
      if (!config) {
        throw new UserError(`fleet: unknown fleet ${JSON.stringify(ctx.fleet)} (known: ${known.join(', ') || 'none'}); add it under fleets in cluster_fleet_config.ts`);
      }
      return new FleetBackend({
        name: ctx.fleet,
        config,
        openMember: async (host) =>
          new SshBackend({
            host: await openRemoteHost(project, host, { root: config.root }),
            projectRoot: project.root,
            store: project.store,
            runnerBundle: runnerBundle(project),
            syncExcludes: config.sync_excludes,
            sessionPrefix: config.session_prefix,
            outputDir: config.output_dir,
            bootstrapCommand: `make bootstrap fleet=${ctx.fleet}`,
          }),
      });
    }
    default:
      throw new UserError(`backend: "${name}" is not available in this version; use backend=local, ssh or fleet`);
  }
}

function runnerBundle(project: Project): string {
  return path.join(project.root, 'dist', 'runner', 'run-attempt.mjs');
}

/** The backend that can find an existing attempt again, from its persisted handle. */
export function backendForHandle(project: Project, handle: Handle): Promise<Backend> {
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return openBackend(handle.backend, project, { host: text(handle.host), fleet: text(handle.fleet) });
}
