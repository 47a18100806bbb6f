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
        runnerBundle: path.join(project.root, 'dist', 'runner', 'run-attempt.mjs'),
      });
    }
    default:
      throw new UserError(`backend: "${name}" is not available in this version; use backend=local`);
  }
}

/** The backend that can find an existing attempt again, from its persisted handle. */
export function backendForHandle(project: Project, handle: Handle): Promise<Backend> {
  return openBackend(handle.backend, project, { host: typeof handle.host === 'string' ? handle.host : undefined });
}
