// Backend name → implementation. Each backend lives in its own file behind one interface.
import type { BackendName } from '../config/define-config.js';
import type { Project } from '../project.js';
import { UserError } from '../ui/errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';

export interface BackendContext {
  /** where a foreground attempt's output goes (the live display) */
  echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
}

export function openBackend(name: BackendName, project: Project, ctx: BackendContext = {}): Backend {
  switch (name) {
    case 'local':
      return new LocalBackend({ root: project.root, store: project.store, workDir: project.workDir, echo: ctx.echo });
    default:
      throw new UserError(`backend: "${name}" is not available in this version; use backend=local`);
  }
}
