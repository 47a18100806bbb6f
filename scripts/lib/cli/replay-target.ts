// Where `make replay` runs a recorded run again: the backend and place the make variables name
// (a place alone names its backend), else the run's first backend, and for its place what its
// newest attempt ran on (the ssh host, the SLURM cluster, the Batch entry) or the fleet it was
// launched on.
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

/** The backend each place variable names a place of. */
const PLACE_BACKEND = { host: 'ssh', fleet: 'fleet', cluster: 'slurm', batch: 'gcp-batch' } as const satisfies Record<string, Backend>;

/**
 * The backend a place given without backend= means: the recorded one where it takes that place,
 * else the place's own (host=vast replays on ssh host vast, never silently where the run last ran).
 */
function impliedBackend(vars: ReplayVars, recorded: Backend): Backend {
  const named = (Object.keys(PLACE_BACKEND) as (keyof typeof PLACE_BACKEND)[]).filter((k) => vars[k]).map((k) => PLACE_BACKEND[k]);
  return named.includes(recorded as (typeof named)[number]) ? recorded : (named[0] ?? recorded);
}

export function replayTarget(vars: ReplayVars, recorded: RecordedPlace): ReplayTarget {
  const backend = vars.backend ?? impliedBackend(vars, recorded.backends[0] ?? 'local');
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
