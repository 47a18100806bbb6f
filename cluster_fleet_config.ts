// Switchyard's inventory: where runs execute and where they are kept.
// Edit freely; it is validated on every command. `make init` writes it, and asks before it
// replaces it; `make doctor` checks everything it names.
import { defineConfig } from './scripts/lib/config/define-config.js';

export default defineConfig({
  defaults: {
    backend: 'local',
    store: 'file://.switchyard/store',
    max_attempts: 5,
  },
  // One entry per box; `make bootstrap host=<name>` makes it ready. For example:
  //   h1: { host: 'ssh4.vast.ai', port: 22222, user: 'root', identity_file: '~/.ssh/id_ed25519' },
  //   h2: {
  //     host: 'gpu2.lab.example',
  //     connect_timeout: 10,   // seconds; also how long make hosts waits before it calls the host down
  //     gpus: 1,               // GPUs an attempt there can use (default 0)
  //     price_per_hour: 0.6,   // US dollars an hour (optional): runs placed there are priced by it
  //   },
  hosts: {},
  // A fleet: inventory hosts that one sharded search spreads over, shard i starting on
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
  //   },
  fleets: {},
  // Google Cloud Batch: a run's units become the tasks of one job, one VM each; each task fetches
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
  //     max_run_duration: '24h',                      // past it a task ends `timeout`
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
  //   },
  batch: {},
  // SLURM clusters: each submission of a run's units is one sbatch job (a job array for shards),
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
  //   },
  clusters: {},
  // make agent keeps its lock, the runs asked of it and the requests sent to it in
  // .switchyard/agent/ (home: 'local'), carrying the runs launched from this checkout; with
  // home: 'store', in the store, so an agent on any always-on machine with this repository and
  // the store carries runs a laptop launched. stale_after_sec (default 30): how long a silent
  // agent, or a shell following a run, is trusted before another takes over.
  // agent: { home: 'store' },
});
