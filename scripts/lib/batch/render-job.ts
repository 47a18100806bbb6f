// The Google Cloud Batch job of one submission of a run's units, rendered purely: no I/O, so
// golden files pin it down (test/golden/batch/). One task group, one task per unit and per VM;
// each task runs TASK_SCRIPT, which picks its unit by BATCH_TASK_INDEX. The result is the
// client's own Job type (durations as { seconds }); the REST request carries it as proto3 JSON.
//
// Batch retries a task on the exit codes it reserves for VM failures (spot preemption first),
// up to `retries` times; every exit of the task's own process and 50005, the maximum run
// duration, fail it at once: an experiment that failed fails again, and a timeout is the
// unit's to resume from its checkpoint.
import type { protos } from '@google-cloud/batch';
import type { BatchEntry } from '../config/batch-config.js';
import { STORE_CREDENTIALS } from '../config/batch-store.js';
import { entryNamed } from '../config/entry-named.js';
import { CONFIG_FILE, type Config, type S3Config } from '../config/load-config.js';
import { canonicalJson } from '../pins/canonical-json.js';
import type { AttemptSpec } from '../runner/attempt-spec.js';
import { durationSec } from '../spec/formats.js';
import { s3ObjectHttpUrl } from '../store/s3-url.js';
import { UserError } from '../ui/errors.js';
import { VM_FAILURES } from './exit-codes.js';
import { labelValue } from './gcp-names.js';
import { TASK_SCRIPT } from './task-script.js';

type v1 = typeof protos.google.cloud.batch.v1;
export type BatchJob = protos.google.cloud.batch.v1.IJob;
type Runnable = protos.google.cloud.batch.v1.IRunnable;

/** The SHA-256 of each object a task fetches from the store (see task-script.ts). */
export interface BatchArtifacts {
  /** npm's node-linux-<nodeArch(machine_type)> package for this Node version */
  node: string;
  /** the runner bundle, gzip-compressed */
  runner: string;
  /** the project at its code pin: a gzip-compressed tar */
  code: string;
}

/** Where and how a job runs: a `batch:` entry with the store its tasks write to. */
export interface BatchTarget {
  /** the entry's name under `batch:` */
  name: string;
  entry: BatchEntry;
  /** the s3:// store tasks write to: the entry's own, else defaults.store */
  store: string;
  s3: S3Config | null;
  artifacts: BatchArtifacts;
}

/** The target named `name` in the config; an unknown name is a one-line error. */
export function batchTarget(config: Config, name: string, artifacts: BatchArtifacts): BatchTarget {
  const entry = config.batch[entryNamed(config, 'batch', name)]!;
  return { name, entry, store: entry.store ?? config.defaults.store, s3: config.defaults.s3 ?? null, artifacts };
}

/** What differs between the units of one job; everything else of their specs is shared. */
const UNIT_FIELDS = ['unit_id', 'shard_index', 'attempt'] as const;
type UnitFields = Pick<AttemptSpec, (typeof UNIT_FIELDS)[number]>;

/** One environment string of a process holds at most 128 KiB (Linux's MAX_ARG_STRLEN). */
const MAX_ENV_STRING = 128 * 1024;

export function renderBatchJob(units: readonly AttemptSpec[], target: BatchTarget): BatchJob {
  const { entry } = target;
  const [first] = units;
  if (!first) throw new Error('renderBatchJob: a job needs at least one unit');
  const own: UnitFields[] = units.map((u) => ({ unit_id: u.unit_id, shard_index: u.shard_index, attempt: u.attempt }));
  const shared = sharedSpec(units);
  checkJob(first, target);
  const unitsJson = JSON.stringify(own);
  if (unitsJson.length > MAX_ENV_STRING) {
    throw new UserError(`backend gcp-batch: ${units.length} units do not fit one Batch job (their list must stay under 128 KiB); lower shards.count`);
  }
  const secrets = [...new Set([...STORE_CREDENTIALS, ...first.secrets])];
  return {
    taskGroups: [
      {
        taskCount: units.length,
        parallelism: Math.min(entry.parallelism ?? units.length, units.length),
        taskCountPerNode: 1,
        taskSpec: {
          runnables: [runnable(entry)],
          maxRunDuration: { seconds: durationSec(entry.max_run_duration) },
          maxRetryCount: entry.retries,
          // Batch takes one lifecycle policy: RETRY_TASK retries the listed codes and fails every other.
          lifecyclePolicies: [{ action: 'RETRY_TASK', actionCondition: { exitCodes: [...VM_FAILURES.keys()] } }],
          environment: {
            variables: {
              SWITCHYARD_BLOBS: s3ObjectHttpUrl(target.store, target.s3, 'blobs'),
              SWITCHYARD_RUNS: s3ObjectHttpUrl(target.store, target.s3, 'runs'),
              SWITCHYARD_S3_REGION: target.s3?.region ?? 'us-east-1',
              SWITCHYARD_NODE: target.artifacts.node,
              SWITCHYARD_RUNNER: target.artifacts.runner,
              SWITCHYARD_CODE: target.artifacts.code,
              SWITCHYARD_SPEC: JSON.stringify({ ...shared, store: target.store, store_s3: target.s3, secrets_file: '../secrets.json', venv: null }),
              SWITCHYARD_UNITS: unitsJson,
              SWITCHYARD_SECRETS: secrets.join(' '),
            },
            secretVariables: Object.fromEntries(secrets.map((k) => [k, entry.secrets[k]!])),
          },
        },
      },
    ],
    allocationPolicy: allocationPolicy(entry),
    // The digest's first 32 hex (128 bits): a label value holds 63 characters, a digest 64.
    labels: { 'switchyard-run': labelValue(first.run_id), 'switchyard-pins': first.pins_digest.slice(0, 32) },
    logsPolicy: { destination: 'CLOUD_LOGGING' },
  };
}

/** The spec every unit of the job shares; units of one job differ only in UNIT_FIELDS. */
function sharedSpec(units: readonly AttemptSpec[]): Omit<AttemptSpec, (typeof UNIT_FIELDS)[number]> {
  const strip = ({ unit_id: _u, shard_index: _s, attempt: _a, ...rest }: AttemptSpec) => rest;
  const shared = strip(units[0]!);
  const text = canonicalJson(shared);
  if (units.some((u) => canonicalJson(strip(u)) !== text)) throw new Error(`renderBatchJob: units of one job may differ only in ${UNIT_FIELDS.join(', ')}`);
  return shared;
}

/** What the entry must give this run's units, checked before anything is sent. */
function checkJob(unit: AttemptSpec, { name, entry }: BatchTarget): void {
  const field = `${CONFIG_FILE}: batch.${name}`;
  const unmapped = unit.secrets.filter((k) => !(k in entry.secrets));
  if (unmapped.length) {
    throw new UserError(`${field}.secrets: ${unmapped.join(', ')} declared by the experiment, with no Secret Manager version here; add ${unmapped[0]}: "projects/${entry.project}/secrets/<name>/versions/latest"`);
  }
  // The runner's own time limit must come first: it checkpoints; Batch's just stops the task.
  if (unit.time_limit_sec) {
    const needed = unit.time_limit_sec + unit.grace_sec + 60;
    if (durationSec(entry.max_run_duration) < needed) {
      throw new UserError(
        `${field}.max_run_duration: ${entry.max_run_duration} would stop tasks before the experiment's time limit (resources.time, ${unit.time_limit_sec} s, and ${unit.grace_sec} s to checkpoint); raise it to "${Math.ceil(needed / 3600)}h" or more`,
      );
    }
  }
}

function runnable(entry: BatchEntry): Runnable {
  if (!entry.image) return { displayName: 'switchyard', script: { text: TASK_SCRIPT } };
  return { displayName: 'switchyard', container: { imageUri: entry.image, entrypoint: '/bin/bash', commands: ['-c', TASK_SCRIPT] } };
}

function allocationPolicy(entry: BatchEntry): protos.google.cloud.batch.v1.IAllocationPolicy {
  const provisioningModel: keyof v1['AllocationPolicy']['ProvisioningModel'] = entry.provisioning === 'spot' ? 'SPOT' : 'STANDARD';
  const gpus = entry.accelerators.length > 0;
  const network = entry.network || entry.subnetwork || entry.no_external_ip;
  return {
    location: { allowedLocations: entry.allowed_locations ?? [`regions/${entry.region}`] },
    instances: [
      {
        policy: {
          machineType: entry.machine_type,
          provisioningModel,
          ...(gpus && { accelerators: entry.accelerators.map((a) => ({ type: a.type, count: a.count })) }),
          ...(entry.boot_disk_gb && { bootDisk: { sizeGb: entry.boot_disk_gb } }),
        },
        ...(gpus && { installGpuDrivers: true }),
      },
    ],
    ...(entry.service_account && { serviceAccount: { email: entry.service_account } }),
    ...(network && {
      network: {
        networkInterfaces: [
          { ...(entry.network && { network: entry.network }), ...(entry.subnetwork && { subnetwork: entry.subnetwork }), ...(entry.no_external_ip && { noExternalIpAddress: true }) },
        ],
      },
    }),
  };
}
