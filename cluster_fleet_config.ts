// Switchyard's inventory: where runs execute and where they are kept.
// Edit freely; it is validated on every command.
import { defineConfig } from './scripts/lib/config/define-config.js';

export default defineConfig({
  defaults: {
    backend: 'local',
    store: 'file://.switchyard/store',
    max_attempts: 5,
  },
  // One entry per box; `make bootstrap host=<name>` makes it ready. For example:
  //   h1: { host: 'ssh4.vast.ai', port: 22222, user: 'root', identity_file: '~/.ssh/id_ed25519' },
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
});
