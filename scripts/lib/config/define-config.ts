// The typed shape of cluster_fleet_config.ts. defineConfig() only gives editors the types;
// load-config.ts validates the exported object with zod before anything uses it.

export type BackendName = 'local' | 'ssh' | 'fleet' | 'gcp-batch' | 'slurm';

export interface HostConfig {
  /** ssh host name, address or ~/.ssh/config alias */
  host: string;
  port?: number;
  user?: string;
  identity_file?: string;
  /** where the project lives on the host, relative to the login directory (default `switchyard`) */
  root?: string;
  /** known_hosts file for this host (default ~/.ssh/known_hosts); host keys are always verified */
  known_hosts?: string;
  /** seconds to wait for a connection (default 10) */
  connect_timeout?: number;
  /** `auto` uses the host's Node >= 20 or ships one; `ship` always ships the pinned runtime */
  node?: 'auto' | 'ship';
  labels?: Record<string, string | number>;
  python?: 'uv' | 'venv';
  /** GPUs an attempt on this host can use (default 0): a spec asking for more is refused before it runs */
  gpus?: number;
  /** what the host costs an hour, in USD (e.g. a rented box's hourly rate): runs placed there are priced by it */
  price_per_hour?: number;
}

export interface S3Settings {
  /** an S3-compatible server (MinIO, R2, s3rver): `http(s)://host:port`; omit for AWS */
  endpoint?: string;
  /** default 'us-east-1' */
  region?: string;
  /** `host/bucket/key` URLs instead of `bucket.host/key`; most non-AWS servers need true. Default false */
  force_path_style?: boolean;
}

/** A named, ordered group of inventory hosts that a sharded search spreads over. */
export interface FleetConfig {
  /** inventory host names, in order: shard i starts on hosts[i % hosts.length] */
  hosts: string[];
  /** shards running at once on one host (default 1: a host's shards run one after another) */
  per_host?: number;
  /** the project's folder on every host of this fleet, relative to the login directory (default: each host's root) */
  root?: string;
  /**
   * where shard i's runner writes its outputs on a host: `<output_dir>/<run_id>/shards/<i>/`
   * (absolute, or relative to the login directory; default the shard's scratch folder,
   * `<root>/scratch/<run_id>/shards/<i>/output`). They reach the store either way.
   */
  output_dir?: string;
  /** tmux session names start with it (default `sy`): `<prefix>-<run>-s<shard>-<attempt>` */
  session_prefix?: string;
  /** rsync excludes on top of the built-in ones (.git, .switchyard, outputs, caches) */
  sync_excludes?: string[];
  /** hosts synced at once (default 8) */
  sync_parallel?: number;
  /** move the unfinished shards of a lost host onto the healthy ones (default true) */
  requeue?: boolean;
  /** seconds a host may stay unreachable before its shards count as lost (default 30) */
  lost_after_sec?: number;
}

/**
 * A Google Cloud Batch target: each run's units become the tasks of one job, one task per VM.
 * Each task fetches the code, the runner and a Node runtime from the store, checks them
 * against their SHA-256 and runs the runner.
 */
export interface BatchConfig {
  /** the Google Cloud project */
  project: string;
  /** the job's region, one of scripts/lib/config/batch-regions.ts */
  region: string;
  /** `zones/<zone>` or `regions/<region>` inside the region (default: the whole region) */
  allowed_locations?: string[];
  /** each task's VM, e.g. `n2-standard-4` or `g2-standard-8` */
  machine_type: string;
  /** GPUs on each VM (Batch installs the drivers), e.g. `[{ type: 'nvidia-l4', count: 1 }]` */
  accelerators?: { type: string; count?: number }[];
  /** default `spot` */
  provisioning?: 'spot' | 'standard';
  /** the VMs' service account: it needs to read the secrets below (default: the Compute Engine one) */
  service_account?: string;
  /** `projects/<p>/global/networks/<name>` (default: the project's default network) */
  network?: string;
  subnetwork?: string;
  /** no public IP: tasks then reach the store through Cloud NAT or Private Google Access */
  no_external_ip?: boolean;
  /** past it Batch stops a task, which ends `timeout` (default `24h`) */
  max_run_duration?: string;
  /** reruns of a task whose VM failed or was preempted (default 3, at most 10) */
  retries?: number;
  /** tasks of one job at once (default: all) */
  parallelism?: number;
  boot_disk_gb?: number;
  /** the container tasks run in, pinned by digest (`<image>@sha256:<64 hex>`); absent: a script on Batch's own VM image */
  image?: string;
  /** the s3:// store tasks write to (default: defaults.store, which must then be s3://) */
  store?: string;
  /**
   * environment variable → Secret Manager version (`projects/<p>/secrets/<name>/versions/latest`):
   * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the store, and every secret an experiment declares
   */
  secrets: Record<string, string>;
}

/**
 * A SLURM cluster: each submission of a run's units is one sbatch job (an array for shards),
 * submitted on its login node.
 */
export interface ClusterConfig {
  /** `local` (sbatch on this machine, the project on a filesystem the nodes see; default) or a host under `hosts` */
  login?: string;
  /** the project's folder on the login node, relative to its login directory, on a filesystem the nodes see (default: the host's root) */
  root?: string;
  partition?: string;
  account?: string;
  qos?: string;
  constraint?: string;
  /** `--gres` as the cluster spells it, e.g. `gpu:a100:1` (default `gpu:<resources.gpus>` when a spec asks for GPUs) */
  gres?: string;
  /** GPUs one job can have (default 0) */
  gpus?: number;
  /** `--time` of every job, e.g. `4h` (default: the spec's resources.time plus its grace, else the partition's) */
  time?: string;
  /** `--cpus-per-task` (default 1) */
  cpus?: number;
  /** `--mem`, e.g. `4G` */
  mem?: string;
  /** SLURM may preempt and requeue the jobs (`--requeue`; default false) */
  preemptible?: boolean;
  /** units of a run in flight at once (default all) */
  max_jobs?: number;
  /** seconds the cluster may stay unanswered before its jobs count as lost (default 300) */
  lost_after_sec?: number;
}

export interface SwitchyardConfig {
  defaults?: {
    backend?: BackendName;
    /** `file://<dir>` (relative to the repo) or `s3://bucket/prefix` */
    store?: string;
    /** attempts per run before a preempted or lost run gives up */
    max_attempts?: number;
    /** S3 client settings for an s3:// store. AWS_REGION and AWS_ENDPOINT_URL_S3, when set in
     * .env or the environment, override region and endpoint (as in the AWS tools). Keys go in
     * .env: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). */
    s3?: S3Settings;
  };
  hosts?: Record<string, HostConfig>;
  /** a fleet is its host list, or a FleetConfig */
  fleets?: Record<string, string[] | FleetConfig>;
  /** Google Cloud Batch targets, by name */
  batch?: Record<string, BatchConfig>;
  /** SLURM clusters, by name */
  clusters?: Record<string, ClusterConfig>;
  /** where make agent keeps its lock, the runs asked of it and the requests sent to it */
  agent?: AgentConfig;
}

export interface AgentConfig {
  /**
   * `local` (default): `.switchyard/agent/`, one agent per state folder, carrying the runs
   * launched from this checkout. `store`: `agent/` in the store, one agent per store on any
   * machine with the repository and the store (an always-on host carries what a laptop launched).
   */
  home?: 'local' | 'store';
  /** seconds a silent agent, or a shell following a run, is trusted before another takes over (default 30) */
  stale_after_sec?: number;
}

export function defineConfig(config: SwitchyardConfig): SwitchyardConfig {
  return config;
}
