// Where `make replay` runs a recorded run again: the backend and place the make variables name,
// else the run's first backend, and for its place what its newest attempt ran on (the ssh host,
// the SLURM cluster, the Batch entry) or the fleet it was launched on.
import type { BackendName as Backend } from '../config/define-config.js';

export interface ReplayVars {
  backend?: Backend;
  host?: string;
  fleet?: string;
  cluster?: string;
  batch?: string;
}

/** The parts of a run record the choice reads. */
export interface RecordedPlace {
  backends: readonly Backend[];
  fleet?: string;
  units: readonly { attempts: readonly { handle: Readonly<Record<string, unknown>> | null }[] }[];
}

export interface ReplayTarget {
  backend: Backend;
  host?: string;
  fleet?: string;
  cluster?: string;
  batch?: string;
}

export function replayTarget(vars: ReplayVars, recorded: RecordedPlace): ReplayTarget {
  const backend = vars.backend ?? recorded.backends[0] ?? 'local';
  const last = recorded.units[0]?.attempts.at(-1)?.handle;
  const recordedText = (field: string) => (typeof last?.[field] === 'string' ? last[field] : undefined);
  switch (backend) {
    case 'ssh':
      return { backend, host: vars.host ?? recordedText('host') };
    case 'fleet':
      return { backend, fleet: vars.fleet ?? recorded.fleet };
    case 'slurm':
      return { backend, cluster: vars.cluster ?? recordedText('cluster') };
    case 'gcp-batch':
      return { backend, batch: vars.batch ?? recordedText('entry') };
    default:
      return { backend };
  }
}
