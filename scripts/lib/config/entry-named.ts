// The inventory entry a verb's variable names (host=, fleet=, batch=, cluster=): the one named,
// or, where one is enough, the only one configured; otherwise one line naming the known ones.
import { UserError } from '../ui/errors.js';
import { CONFIG_FILE, type Config } from './load-config.js';

interface Section {
  /** the make variable: `host` */
  variable: string;
  /** what an entry is called: `host`, `entry`, `cluster` */
  noun: string;
  backend: string;
  /** set: a name is always required, this is the example when none is configured */
  example?: string;
  /** with no entries at all: `no SLURM clusters configured` */
  none: string;
  /** what several entries are called: `clusters` */
  plural: string;
}

const SECTIONS = {
  hosts: { variable: 'host', noun: 'host', backend: 'ssh', example: 'vast', none: '', plural: 'hosts' },
  fleets: { variable: 'fleet', noun: 'fleet', backend: 'fleet', example: 'lab', none: '', plural: 'fleets' },
  batch: { variable: 'batch', noun: 'entry', backend: 'gcp-batch', none: 'no Batch entries configured', plural: 'entries' },
  clusters: { variable: 'cluster', noun: 'cluster', backend: 'slurm', none: 'no SLURM clusters configured', plural: 'clusters' },
} satisfies Record<string, Section>;

export function entryNamed(config: Config, key: keyof typeof SECTIONS, name: string | undefined): string {
  const s: Section = SECTIONS[key];
  const known = Object.keys(config[key]);
  const list = known.join(', ') || 'none';
  if (name) {
    if (!config[key][name]) throw new UserError(`${s.variable}: unknown ${s.noun} ${JSON.stringify(name)} (known: ${list}); add it under ${key} in ${CONFIG_FILE}`);
    return name;
  }
  if (s.example) throw new UserError(`${s.variable}: required with backend=${s.backend}, e.g. ${s.variable}=${known[0] ?? s.example} (${key} are listed in ${CONFIG_FILE})`);
  if (known.length === 1) return known[0]!;
  if (!known.length) throw new UserError(`${s.variable}: ${s.none}; add one under ${key} in ${CONFIG_FILE} (the commented example explains each field)`);
  throw new UserError(`${s.variable}: required with backend=${s.backend} when several ${s.plural} are configured, e.g. ${s.variable}=${known[0]} (known: ${list})`);
}
