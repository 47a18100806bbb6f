// The Google Cloud Batch job of a submission, pinned down by golden files: each is the job as the
// REST request carries it (proto3 JSON, made by the client's own serializer from the client's
// own protos), the task script shown once in test/golden/batch/task.sh. UPDATE_GOLDEN=1 rewrites.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { protobuf, serializer } from 'google-gax';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../scripts/lib/config/load-config.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { ExperimentSchema } from '../../scripts/lib/spec/experiment-schema.js';
import { formatZodIssue } from '../../scripts/lib/spec/zod-format.js';
import { batchJobId, labelValue } from '../../scripts/lib/batch/gcp-names.js';
import { batchTarget, renderBatchJob, type BatchJob } from '../../scripts/lib/batch/render-job.js';
import { blobKey, nodeArch, TASK_SCRIPT } from '../../scripts/lib/batch/task-script.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import { s3ObjectHttpUrl } from '../../scripts/lib/store/s3-url.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { expectGolden } from '../helpers/golden.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { REPO } from '../helpers/sandbox.js';

const root = protobuf.Root.fromJSON(JSON.parse(readFileSync(path.join(REPO, 'node_modules/@google-cloud/batch/build/protos/protos.json'), 'utf8')));
const JobType = root.lookupType('google.cloud.batch.v1.Job');

/**
 * Every field of `value` exists in `type` in protos.json, each enum value is one of its names,
 * each message is an object and each repeated field a list: what the client would silently drop
 * or refuse is caught here. Returns the paths it found wrong.
 */
function unknownFields(type: protobuf.Type, value: Record<string, unknown>, at = 'job'): string[] {
  const wrong: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    if (!field) {
      wrong.push(`${at}.${key}: no such field in ${type.fullName}`);
      continue;
    }
    field.resolve();
    const items = field.map ? Object.entries(v as object).map(([k, x]) => [`${at}.${key}.${k}`, x] as const) : field.repeated ? (v as unknown[]).map((x, i) => [`${at}.${key}[${i}]`, x] as const) : [[`${at}.${key}`, v] as const];
    if (field.repeated && !Array.isArray(v)) wrong.push(`${at}.${key}: a list expected`);
    for (const [where, item] of items) {
      const resolved = field.resolvedType;
      if (resolved instanceof protobuf.Enum && !(String(item) in resolved.values)) wrong.push(`${where}: ${String(item)} is not a ${resolved.fullName}`);
      if (resolved instanceof protobuf.Type) {
        if (typeof item !== 'object' || item === null) wrong.push(`${where}: an object expected`);
        else wrong.push(...unknownFields(resolved, item as Record<string, unknown>, where));
      }
    }
  }
  return wrong;
}

/** The REST body, as reviewed: numbers lists on one line, the task script as a pointer to task.sh. */
function restJson(job: BatchJob): string {
  expect(unknownFields(JobType, job as Record<string, unknown>)).toEqual([]);
  const rest = serializer.toProto3JSON(JobType.fromObject(job)) as { taskGroups: { taskSpec: { runnables: { script?: { text: string }; container?: { commands: string[] } }[] } }[] };
  const runnable = rest.taskGroups[0]!.taskSpec.runnables[0]!;
  if (runnable.script) {
    expect(runnable.script.text).toBe(TASK_SCRIPT);
    runnable.script.text = '<test/golden/batch/task.sh>';
  } else {
    expect(runnable.container!.commands).toEqual(['-c', TASK_SCRIPT]);
    runnable.container!.commands[1] = '<test/golden/batch/task.sh>';
  }
  return JSON.stringify(rest, null, 2).replace(/\[\s+(-?\d+(?:,\s+-?\d+)*)\s+\]/g, (_, list: string) => `[${list.split(/,\s+/).join(', ')}]`) + '\n';
}

const SHA = (c: string) => c.repeat(64);
const ARTIFACTS = { node: SHA('1'), runner: SHA('2'), code: SHA('3') };
const SECRETS = { AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/store-key-id/versions/latest', AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/store-secret-key/versions/2' };

function config(batch: Record<string, unknown>, defaults: Record<string, unknown> = {}): Config {
  return ConfigSchema.parse({ defaults: { store: 's3://team-runs/switchyard', s3: { region: 'us-east-2' }, ...defaults }, batch });
}

const entry = (over: Record<string, unknown> = {}) => ({ project: 'my-project', region: 'us-central1', machine_type: 'n2-standard-4', secrets: SECRETS, ...over });

const RUN = 'knn-fleet-20261130T1200-0badf00d';
const DIGEST = '0123456789abcdef'.repeat(4);

/** Unit i of an n-shard run (or the one unit of an unsharded run), at an attempt. */
function unit(i: number, n: number, attempt = 1, over: Partial<AttemptSpec> = {}): AttemptSpec {
  return testAttemptSpec({
    run_id: RUN,
    unit_id: n > 1 ? `${RUN}/shards/${i}` : RUN,
    pins_digest: DIGEST,
    attempt,
    command: ['python3', 'search.py', '--grid', 'a b'],
    cwd: 'competitions/knn',
    shard_index: i,
    shard_count: n,
    secrets_file: '.env',
    store: 'file://.switchyard/store',
    ...over,
  });
}
const shards = (n: number, attempt = 1) => Array.from({ length: n }, (_, i) => unit(i, n, attempt));

const render = (units: AttemptSpec[], batch: Record<string, unknown>, defaults?: Record<string, unknown>) => renderBatchJob(units, batchTarget(config({ b: batch }, defaults), 'b', ARTIFACTS));

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message.split('\n')).toHaveLength(1);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('renderBatchJob', () => {
  it('keeps the task script as reviewed, valid bash', () => {
    expectGolden('batch/task.sh', `${TASK_SCRIPT}\n`);
  });

  it('renders one task: a script on the default image, standard VMs, no retries', () => {
    const job = render([unit(0, 1)], entry({ provisioning: 'standard', retries: 0 }));
    expectGolden('batch/one-task.json', restJson(job));
  });

  it('renders 8 shards, 4 at a time, one task per VM, each unit picked by its task index', () => {
    const job = render(shards(8), entry({ parallelism: 4 }));
    expectGolden('batch/shards-8-parallel-4.json', restJson(job));
    const group = job.taskGroups![0]!;
    expect([group.taskCount, group.parallelism, group.taskCountPerNode]).toEqual([8, 4, 1]);
    const env = group.taskSpec!.environment!.variables!;
    expect(JSON.parse(env.SWITCHYARD_UNITS!)[5]).toEqual({ unit_id: `${RUN}/shards/5`, shard_index: 5, attempt: 1 });
    const spec = JSON.parse(env.SWITCHYARD_SPEC!);
    expect(spec).toMatchObject({ run_id: RUN, shard_count: 8, store: 's3://team-runs/switchyard', store_s3: { region: 'us-east-2' }, secrets_file: '../secrets.json' });
    expect(spec).not.toHaveProperty('unit_id');
  });

  it('renders a GPU job: accelerators, the drivers installed, a bigger boot disk', () => {
    const job = render([unit(0, 1)], entry({ machine_type: 'g2-standard-8', accelerators: [{ type: 'nvidia-l4', count: 1 }], boot_disk_gb: 200, provisioning: 'standard' }));
    expectGolden('batch/gpu.json', restJson(job));
    expect(job.allocationPolicy!.instances![0]).toMatchObject({ installGpuDrivers: true, policy: { accelerators: [{ type: 'nvidia-l4', count: 1 }] } });
  });

  it('renders spot with retries: one policy, RETRY_TASK on VM failures (every other exit fails the task)', () => {
    const job = render(shards(3, 2), entry({
      retries: 5,
      max_run_duration: '6h',
      allowed_locations: ['zones/us-central1-a', 'zones/us-central1-c'],
      service_account: 'switchyard-batch@my-project.iam.gserviceaccount.com',
      subnetwork: 'projects/my-project/regions/us-central1/subnetworks/batch',
      no_external_ip: true,
    }));
    expectGolden('batch/spot-retries.json', restJson(job));
    const spec = job.taskGroups![0]!.taskSpec!;
    expect(job.allocationPolicy!.instances![0]!.policy!.provisioningModel).toBe('SPOT');
    expect(spec.maxRetryCount).toBe(5);
    // Batch takes one lifecycle policy; under RETRY_TASK a process exit (1-255) and 50005 fail at once.
    expect(spec.lifecyclePolicies).toEqual([{ action: 'RETRY_TASK', actionCondition: { exitCodes: [50001, 50002, 50003, 50004, 50006] } }]);
  });

  it('renders a container pinned by digest, running the same script', () => {
    const image = `us-docker.pkg.dev/my-project/train/torch@sha256:${'ab'.repeat(32)}`;
    const job = render([unit(0, 1)], entry({ image }));
    expectGolden('batch/container.json', restJson(job));
    expect(job.taskGroups![0]!.taskSpec!.runnables![0]!.container).toMatchObject({ imageUri: image, entrypoint: '/bin/bash' });
  });

  it("renders a script on Batch's default image: secrets by Secret Manager name only, an S3-compatible store", () => {
    const hf = 'projects/my-project/secrets/hf-token/versions/7';
    const job = render([unit(0, 1, 3, { secrets: ['HF_TOKEN'], time_limit_sec: 7200 })], entry({ secrets: { ...SECRETS, HF_TOKEN: hf }, store: 's3://r2-bucket/runs' }), {
      s3: { endpoint: 'https://acc0123.r2.cloudflarestorage.com', region: 'auto', force_path_style: true },
    });
    expectGolden('batch/script-default-image.json', restJson(job));
    const env = job.taskGroups![0]!.taskSpec!.environment!;
    expect(env.secretVariables).toEqual({ ...SECRETS, HF_TOKEN: hf });
    expect(env.variables!.SWITCHYARD_SECRETS).toBe('AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY HF_TOKEN');
    expect(env.variables!.SWITCHYARD_BLOBS).toBe('https://acc0123.r2.cloudflarestorage.com/r2-bucket/runs/blobs');
  });

  it('labels the job with its run and pins digest, within the label rules', () => {
    const long = `${'very-long-competition-name-'.repeat(3)}default-20261130T1200-0badf00d`;
    const job = render([unit(0, 1, 1, { run_id: long, unit_id: long })], entry());
    const labels = job.labels!;
    expect(labels['switchyard-pins']).toBe(DIGEST.slice(0, 32));
    for (const value of Object.values(labels)) expect(value).toMatch(/^[a-z0-9_-]{1,63}$/);
    expect(labelValue(RUN)).toBe('knn-fleet-20261130t1200-0badf00d');
    expect(labelValue(long)).not.toBe(labelValue(`${long}x`));
  });

  it('names each submission by its units and attempts: the same attempts, the same job', () => {
    const id = batchJobId(shards(8));
    expect(id).toMatch(/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/);
    expect(id.startsWith('sy-knn-fleet-20261130t1200-0badf00d-')).toBe(true);
    expect(batchJobId([...shards(8)].reverse())).toBe(id);
    expect(batchJobId(shards(8, 2))).not.toBe(id);
    expect(batchJobId(shards(7))).not.toBe(id);
    expect(batchJobId([unit(0, 1, 1, { run_id: 'x'.repeat(90) })]).length).toBeLessThanOrEqual(63);
  });

  it('never runs more tasks at once than the job has', () => {
    const job = render(shards(2, 3), entry({ parallelism: 4 }));
    expect([job.taskGroups![0]!.taskCount, job.taskGroups![0]!.parallelism]).toEqual([2, 2]);
  });

  it('is never asked for no tasks: a spec of 0 shards is refused where it is read, in one line', () => {
    const raw = { train: { command: 'python3 search.py' }, shards: { count: 0 } };
    const parsed = ExperimentSchema.safeParse(raw);
    expect(parsed.success).toBe(false);
    expect(formatZodIssue('competitions/knn/experiments/fleet.yaml', parsed.error!, ExperimentSchema, raw)).toBe(
      'competitions/knn/experiments/fleet.yaml: shards.count: Too small: expected number to be >=1, e.g. 6',
    );
  });

  it('refuses a job of no units, and units that differ in more than their own fields', () => {
    expect(() => render([], entry())).toThrow('renderBatchJob: a job needs at least one unit');
    expect(() => render([unit(0, 2), unit(1, 2, 1, { seed: 7 })], entry())).toThrow('units of one job may differ only in unit_id, shard_index, attempt');
  });

  it('refuses a declared secret with no Secret Manager version, before anything is sent', () => {
    expect(errorOf(() => render([unit(0, 1, 1, { secrets: ['KAGGLE_KEY'] })], entry()))).toBe(
      'cluster_fleet_config.ts: batch.b.secrets: KAGGLE_KEY declared by the experiment, with no Secret Manager version here; add KAGGLE_KEY: "projects/my-project/secrets/<name>/versions/latest"',
    );
  });

  it("refuses a max_run_duration that would cut off the runner's own time limit", () => {
    expect(errorOf(() => render([unit(0, 1, 1, { time_limit_sec: 7200, grace_sec: 60 })], entry({ max_run_duration: '2h' })))).toBe(
      'cluster_fleet_config.ts: batch.b.max_run_duration: 2h would stop tasks before the experiment\'s time limit (resources.time, 7200 s, and 60 s to checkpoint); raise it to "3h" or more',
    );
  });

  it('refuses an entry the config does not have', () => {
    expect(errorOf(() => batchTarget(config({ gpu: entry() }), 'gpus', ARTIFACTS))).toBe('batch: unknown entry "gpus" (known: gpu); add it under batch in cluster_fleet_config.ts');
  });
});

describe('what tasks fetch', () => {
  it('addresses objects by SHA-256, and the store over plain HTTP as the SDK would', () => {
    expect(blobKey(SHA('a'))).toBe(`blobs/${SHA('a')}`);
    expect(() => blobKey('../etc')).toThrow('not a SHA-256');
    expect(s3ObjectHttpUrl('s3://bucket/team/runs', null, 'blobs/x')).toBe('https://bucket.s3.us-east-1.amazonaws.com/team/runs/blobs/x');
    expect(s3ObjectHttpUrl('s3://bucket', { region: 'eu-west-1', force_path_style: false }, 'blobs/x')).toBe('https://bucket.s3.eu-west-1.amazonaws.com/blobs/x');
    expect(s3ObjectHttpUrl('s3://my.bucket/p', { region: 'us-east-1', force_path_style: false }, 'k')).toBe('https://s3.us-east-1.amazonaws.com/my.bucket/p/k');
    expect(s3ObjectHttpUrl('s3://b/p q', { endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', force_path_style: true }, 'k')).toBe('http://127.0.0.1:9000/b/p%20q/k');
  });

  it('ships the Arm Node runtime to Arm machine types', () => {
    expect(['n2-standard-4', 'g2-standard-8', 'a3-highgpu-8g', 't2a-standard-4', 'c4a-highcpu-8'].map(nodeArch)).toEqual(['x64', 'x64', 'x64', 'arm64', 'arm64']);
  });
});
