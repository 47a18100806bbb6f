// cluster_fleet_config.ts as `make init` writes it: the commented template with the entries in
// place. Pure: the parsed config goes in with its defaults stripped (only what was set is
// written), so rendering a config that was rendered gives the same text back.
import { isDeepStrictEqual } from 'node:util';
import type { z } from 'zod';
import { BatchSchema } from '../config/batch-config.js';
import { ClusterSchema } from '../config/cluster-config.js';
import type { SwitchyardConfig } from '../config/define-config.js';
import type { Config } from '../config/load-config.js';
import { AgentSchema, ConfigSchema, FleetSchema, HostSchema, S3Schema } from '../config/config-schema.js';

/** A string as a single-quoted TypeScript literal. */
function quote(s: string): string {
  return `'${JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}

/** A value as a one-line TypeScript literal: `{ host: 'a', port: 22 }`. */
export function literal(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (!entries.length) return '{}';
    return `{ ${entries.map(([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : quote(k)}: ${literal(x)}`).join(', ')} }`;
  }
  throw new Error(`render-config: cannot write ${String(v)}`);
}

/** The fields of `value` that differ from their schema's default (a required field always stays). */
function explicit<T extends object>(schema: z.ZodObject, value: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const field = schema.shape[k] as z.ZodType | undefined;
    const fallback = field?.safeParse(undefined);
    if (fallback?.success && isDeepStrictEqual(fallback.data, v)) continue;
    out[k] = v;
  }
  return out as Partial<T>;
}

const mapValues = <A, B>(o: Record<string, A>, f: (a: A) => B): Record<string, B> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));

/** A parsed config as the fewest fields that give it back: what init writes and asks about. */
export function explicitConfig(config: Config): SwitchyardConfig {
  const { s3, ...defaults } = config.defaults;
  return {
    defaults: { ...defaults, ...(s3 ? { s3: explicit(S3Schema, s3) } : {}) },
    hosts: mapValues(config.hosts, (h) => explicit(HostSchema, h) as { host: string }),
    // the short form, a list of hosts, when nothing else is set
    fleets: mapValues(config.fleets, (f) => {
      const fields = explicit(FleetSchema, f) as { hosts: string[] };
      return Object.keys(fields).length === 1 ? fields.hosts : fields;
    }),
    batch: mapValues(config.batch, (b) => explicit(BatchSchema, b) as SwitchyardConfig['batch'] extends Record<string, infer E> | undefined ? E : never),
    clusters: mapValues(config.clusters, (c) => explicit(ClusterSchema, c)),
    agent: explicit(AgentSchema, config.agent),
  };
}

/** The defaults a fresh project starts with. */
export const FRESH_CONFIG: SwitchyardConfig = explicitConfig(ConfigSchema.parse({}));

function section(entries: Record<string, unknown> | undefined): string {
  const list = Object.entries(entries ?? {});
  if (!list.length) return '{}';
  return `{\n${list.map(([name, e]) => `    ${literal(name).replace(/^'([A-Za-z_$][\w$]*)'$/, '$1')}: ${literal(e)},`).join('\n')}\n  }`;
}

export function renderConfig(c: SwitchyardConfig): string {
  const { s3, ...defaults } = c.defaults ?? {};
  const defaultLines = Object.entries(defaults).map(([k, v]) => `    ${k}: ${literal(v)},`);
  if (s3) defaultLines.push(`    s3: ${literal(s3)},`);
  return `// Switchyard's inventory: where runs execute and where they are kept.
// Edit freely; it is validated on every command. \`make init\` writes it, and asks before it
// replaces it; \`make doctor\` checks everything it names.
import { defineConfig } from './scripts/lib/config/define-config.js';

export default defineConfig({
  defaults: {
${defaultLines.join('\n')}
  },
  // One entry per box; \`make bootstrap host=<name>\` makes it ready. For example:
  //   h1: { host: 'ssh4.vast.ai', port: 22222, user: 'root', identity_file: '~/.ssh/id_ed25519' },
  //   h2: {
  //     host: 'gpu2.lab.example',
  //     connect_timeout: 10,   // seconds; also how long make hosts waits before it calls the host down
  //     gpus: 1,               // GPUs an attempt there can use (default 0)
  //     price_per_hour: 0.6,   // US dollars an hour (optional): runs placed there are priced by it
  //   },
  hosts: ${section(c.hosts)},
${FLEETS_COMMENT}
  fleets: ${section(c.fleets)},
${BATCH_COMMENT}
  batch: ${section(c.batch)},
${CLUSTERS_COMMENT}
  clusters: ${section(c.clusters)},
${AGENT_COMMENT}
${c.agent && Object.keys(c.agent).length ? `  agent: ${literal(c.agent)},` : '  // agent: { home: \'store\' },'}
});
`;
}

const AGENT_COMMENT = `  // make agent keeps its lock, the runs asked of it and the requests sent to it in
  // .switchyard/agent/ (home: 'local'), carrying the runs launched from this checkout; with
  // home: 'store', in the store, so an agent on any always-on machine with this repository and
  // the store carries runs a laptop launched. stale_after_sec (default 30): how long a silent
  // agent, or a shell following a run, is trusted before another takes over.`;

const FLEETS_COMMENT = `  // A fleet: inventory hosts that one sharded search spreads over, shard i starting on
  // hosts[i % hosts.length]; make fleet-search experiment=knn/fleet fleet=lab. For example:
  //   lab: ['h1', 'h2', 'h3'],        // the short form: all defaults
  //   lab: {
  //     hosts: ['h1', 'h2', 'h3'],
  //     per_host: 1,                  // shards running at once on one host
  //     root: 'switchyard',           // the project's folder on every host (default: each host's root)
  //     output_dir: '/data/results',  // shard outputs: <output_dir>/<run>/shards/<i> (default: scratch)
  //     session_prefix: 'sy',         // tmux sessions <prefix>-<run>-s<shard>-<attempt>
  //     sync_excludes: ['data/raw'],  // rsync excludes on top of the built-in ones
  //     sync_parallel: 8,             // hosts synced at once
  //     requeue: true,                // move a lost host's unfinished shards to the healthy ones
  //     lost_after_sec: 30,           // unreachable this long: the host is lost
  //   },`;

const BATCH_COMMENT = `  // Google Cloud Batch: a run's units become the tasks of one job, one VM each; each task fetches
  // the code, the runner and a Node runtime from the store by SHA-256 and checks them first.
  // Secrets are Secret Manager versions, never values: the store's key, and what experiments declare.
  // For example:
  //   gpu: {
  //     project: 'my-project',
  //     region: 'us-central1',                       // a Batch region (scripts/lib/config/batch-regions.ts)
  //     allowed_locations: ['zones/us-central1-a'],  // inside the region (default: all of it)
  //     machine_type: 'g2-standard-8',
  //     accelerators: [{ type: 'nvidia-l4', count: 1 }],   // Batch installs the GPU drivers
  //     provisioning: 'spot',                         // or 'standard' (default spot)
  //     service_account: 'switchyard-batch@my-project.iam.gserviceaccount.com',  // reads the secrets
  //     network: 'projects/my-project/global/networks/default',
  //     subnetwork: 'projects/my-project/regions/us-central1/subnetworks/default',
  //     no_external_ip: false,                        // true: reach the store through Cloud NAT
  //     max_run_duration: '24h',                      // past it a task ends \`timeout\`
  //     retries: 3,                                   // Batch's own reruns after a preemption or VM failure (same attempt)
  //     parallelism: 4,                               // tasks at once (default all)
  //     boot_disk_gb: 100,
  //     image: 'us-docker.pkg.dev/my-project/train/torch@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  //                                                   // by digest only; no image: a script on Batch's own VM image
  //     store: 's3://my-bucket/switchyard',           // default defaults.store, which must then be s3://
  //     secrets: {
  //       AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/store-key-id/versions/latest',
  //       AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/store-secret-key/versions/latest',
  //       KAGGLE_KEY: 'projects/my-project/secrets/kaggle-key/versions/2',
  //     },
  //   },`;

const CLUSTERS_COMMENT = `  // SLURM clusters: each submission of a run's units is one sbatch job (a job array for shards),
  // submitted on the cluster's login node; make train experiment=knn/fleet backend=slurm cluster=hpc.
  // For example:
  //   hpc: {
  //     login: 'login1',          // a host under hosts (reached over ssh), or 'local': sbatch on this machine
  //     root: 'switchyard',       // the project on the login node, on a filesystem the nodes see (default: the host's root)
  //     partition: 'gpu',
  //     account: 'lab-a',
  //     qos: 'normal',
  //     constraint: 'a100',
  //     gpus: 1,                  // GPUs per job: --gres=gpu:1 (or gres: 'gpu:a100:1' as the cluster spells it)
  //     time: '4h',               // --time (default: the experiment's resources.time and its grace)
  //     cpus: 8,                  // --cpus-per-task
  //     mem: '32G',               // --mem
  //     preemptible: true,        // --requeue: SLURM may preempt a job and run it again
  //     max_requeues: 3,          // requeues SLURM may do of one attempt; then a new attempt resumes it
  //     max_jobs: 4,              // units of a run in flight at once (an array's %4)
  //     lost_after_sec: 300,      // the login node unanswered this long: its jobs count as lost
  //   },`;
