// The real @google-cloud/batch client, opened through openBatchClient, against the local Batch v1
// stand-in (test/helpers/batch-standin): jobs run as local processes under Batch's parallelism,
// retry, lifecycle and maxRunDuration rules, and the client sees them as it would see Google's.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BatchServiceClient, protos } from '@google-cloud/batch';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openBatchClient } from '../../scripts/lib/batch/client.js';
import { isAlive } from '../../scripts/lib/process-alive.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { PAST_MAX_RUN_DURATION, PREEMPTED, startBatchStandin, type BatchStandin, type StandinEvent } from '../helpers/batch-standin/index.js';
import { waitFor } from '../helpers/sandbox.js';

type IJob = protos.google.cloud.batch.v1.IJob;
type ITask = protos.google.cloud.batch.v1.ITask;

const PARENT = 'projects/test-project/locations/us-central1';
const SECRET = 'projects/test-project/secrets/api-token/versions/1';

let standin: BatchStandin;
let client: BatchServiceClient;
let tmp: string;
let out: string;
let jobs = 0;

beforeAll(async () => {
  standin = await startBatchStandin({ secrets: { [SECRET]: 's3cret' } });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'batch-standin-test-'));
  client = await openBatchClient({ root: tmp, ...standin.clientOptions });
});
afterAll(async () => {
  await client?.close();
  await standin?.close();
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  out = path.join(tmp, `out-${++jobs}`);
  mkdirSync(out);
});

/** A one-group job whose tasks run `script` (bash) with OUT set to this test's output folder. */
function scriptJob(script: string, group: protos.google.cloud.batch.v1.ITaskGroup = {}, taskSpec: protos.google.cloud.batch.v1.ITaskSpec = {}): IJob {
  return {
    taskGroups: [{ ...group, taskSpec: { runnables: [{ script: { text: script } }], environment: { variables: { OUT: out } }, ...taskSpec } }],
    allocationPolicy: { instances: [{ policy: { machineType: 'e2-standard-2', provisioningModel: 'SPOT' } }] },
    logsPolicy: { destination: 'CLOUD_LOGGING' },
  };
}

async function createJob(job: IJob): Promise<string> {
  const [created] = await client.createJob({ parent: PARENT, jobId: `job-${jobs}-${Date.now()}`, job });
  return created.name!;
}

const jobEnded = (name: string) =>
  standin.waitFor((e) => e.job === name && e.task === undefined && (e.state === 'SUCCEEDED' || e.state === 'FAILED'), { what: `${name} to end` });

async function tasksOf(name: string): Promise<ITask[]> {
  const tasks: ITask[] = [];
  for await (const t of client.listTasksAsync({ parent: `${name}/taskGroups/group0` }, { autoPaginate: false })) tasks.push(t);
  return tasks;
}

const exitCodes = (t: ITask) => (t.status?.statusEvents ?? []).filter((e) => e.taskState === 'FAILED').map((e) => e.taskExecution?.exitCode);

async function rejection(p: Promise<unknown>): Promise<Error & { code?: unknown }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(Error);
  return err!;
}

/** The most tasks of `job` RUNNING at once, replayed from the stand-in's record. */
function mostRunning(events: readonly StandinEvent[], job: string): number {
  const running = new Set<number>();
  let most = 0;
  for (const e of events) {
    if (e.job !== job || e.task === undefined) continue;
    if (e.state === 'RUNNING') running.add(e.task);
    else running.delete(e.task);
    most = Math.max(most, running.size);
  }
  return most;
}

describe('Batch v1 stand-in, driven by the real client', () => {
  it('runs every task of a 3-task job, never more than parallelism 2 at once, each with its BATCH_TASK_INDEX', async () => {
    const name = await createJob(scriptJob('echo "$BATCH_TASK_INDEX/$BATCH_TASK_COUNT $BATCH_JOB_ID" > "$OUT/task-$BATCH_TASK_INDEX"', { taskCount: 3, parallelism: 2 }));
    await jobEnded(name);
    const [job] = await client.getJob({ name });
    expect(job.status?.state).toBe('SUCCEEDED');
    expect(job.status?.taskGroups?.group0?.counts).toEqual({ SUCCEEDED: '3' });
    expect(job.taskGroups?.[0]).toMatchObject({ name: `${name}/taskGroups/group0`, taskCount: '3', parallelism: '2' });
    const id = name.split('/').pop();
    for (const i of [0, 1, 2]) expect(readFileSync(path.join(out, `task-${i}`), 'utf8')).toBe(`${i}/3 ${id}\n`);
    expect(mostRunning(standin.history, name)).toBe(2);
    expect(standin.job(name)!.peakRunning).toBe(2);
    const tasks = await tasksOf(name);
    expect(tasks.map((t) => [t.name, t.status?.state])).toEqual([0, 1, 2].map((i) => [`${name}/taskGroups/group0/tasks/${i}`, 'SUCCEEDED']));
    expect(tasks[0]!.status?.statusEvents?.map((e) => e.taskState)).toEqual(['ASSIGNED', 'RUNNING', 'SUCCEEDED']);
  });

  it('rejects an unknown Job field with INVALID_ARGUMENT naming its path', async () => {
    const body = scriptJob('true');
    (body.taskGroups![0]!.taskSpec as Record<string, unknown>).maxRetryCont = 2;
    const { apiEndpoint, port, token } = standin.clientOptions;
    const res = await fetch(`http://${apiEndpoint}:${port}/v1/${PARENT}/jobs?jobId=typo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { code: 400, status: 'INVALID_ARGUMENT', message: `Invalid JSON payload received. Unknown name "maxRetryCont" at 'job.taskGroups[0].taskSpec': Cannot find field.` },
    });
    expect(standin.job(`${PARENT}/jobs/typo`)).toBeUndefined();
  });

  it('the client drops an unknown field before sending, so only a direct check of the JSON sees it', async () => {
    const job = scriptJob('true');
    (job.taskGroups![0]!.taskSpec as Record<string, unknown>).maxRetryCont = 2;
    const name = await createJob(job);
    expect(standin.job(name)!.group.taskSpec).not.toHaveProperty('maxRetryCont');
    await jobEnded(name);
  });

  it('an invalid job the client does send is a 400 that surfaces as err.code 3 (INVALID_ARGUMENT)', async () => {
    const job = scriptJob('true');
    job.taskGroups![0]!.taskSpec!.runnables![0]!.container = { imageUri: 'busybox', commands: ['true'] };
    const before = standin.requests().createJob ?? 0;
    const err = await rejection(createJob(job));
    expect(err.code).toBe(3);
    expect(err.message).toBe(`Invalid value at 'job.taskGroups[0].taskSpec.runnables[0]': oneof executable takes one of container, script, barrier, got container and script`);
    expect(standin.requests().createJob).toBe(before + 1);
  });

  it('under RETRY_TASK on 50001, retries a preempted task (same index, process group killed) and fails any other exit', async () => {
    // Task 0 exits 7 (not listed: no retry). Task 1's first attempt records its pids (its shell
    // and a child) and waits; the retry finds the record and succeeds.
    const script = `[ "$BATCH_TASK_INDEX" = 0 ] && { echo x >> "$OUT/attempts-0"; exit 7; }
if [ -e "$OUT/ran" ]; then echo "$BATCH_TASK_INDEX" > "$OUT/retried"; exit 0; fi
sleep 300 & echo "$$ $!" > "$OUT/ran.tmp" && mv "$OUT/ran.tmp" "$OUT/ran"; wait`;
    const retryOnPreemption = { maxRetryCount: 2, lifecyclePolicies: [{ action: 'RETRY_TASK' as const, actionCondition: { exitCodes: [PREEMPTED] } }] };
    const name = await createJob(scriptJob(script, { taskCount: 2 }, retryOnPreemption));
    await waitFor(() => existsSync(path.join(out, 'ran')), 30_000, 'task 1 to start');
    const pids = readFileSync(path.join(out, 'ran'), 'utf8').trim().split(' ').map(Number);
    await standin.preempt(name, 1);
    await waitFor(() => !pids.some((p) => isAlive(p, null)), 10_000, 'every process of the preempted task to end');
    await jobEnded(name);
    const [job] = await client.getJob({ name });
    expect(job.status?.state).toBe('FAILED');
    const [other, preempted] = await tasksOf(name);
    expect([other!.status?.state, exitCodes(other!)]).toEqual(['FAILED', [7]]);
    expect(readFileSync(path.join(out, 'attempts-0'), 'utf8')).toBe('x\n');
    expect(readFileSync(path.join(out, 'retried'), 'utf8')).toBe('1\n');
    expect([preempted!.status?.state, exitCodes(preempted!)]).toEqual(['SUCCEEDED', [PREEMPTED]]);
    expect(preempted!.status?.statusEvents?.map((e) => e.taskState)).toEqual(['ASSIGNED', 'RUNNING', 'FAILED', 'PENDING', 'ASSIGNED', 'RUNNING', 'SUCCEEDED']);
  });

  it('fails a task at once on a FAIL_TASK exit code, and retries one that exits with any other', async () => {
    const script = `echo x >> "$OUT/attempts-$BATCH_TASK_INDEX"
[ "$BATCH_TASK_INDEX" = 0 ] && exit 3
[ -e "$OUT/again" ] && exit 0
touch "$OUT/again"; exit 4`;
    const failOn3 = { maxRetryCount: 3, lifecyclePolicies: [{ action: 'FAIL_TASK' as const, actionCondition: { exitCodes: [3] } }] };
    const name = await createJob(scriptJob(script, { taskCount: 2 }, failOn3));
    await jobEnded(name);
    const [job] = await client.getJob({ name });
    expect(job.status?.state).toBe('FAILED');
    const [failed, retried] = await tasksOf(name);
    expect([failed!.status?.state, exitCodes(failed!)]).toEqual(['FAILED', [3]]);
    expect(readFileSync(path.join(out, 'attempts-0'), 'utf8')).toBe('x\n');
    expect([retried!.status?.state, exitCodes(retried!)]).toEqual(['SUCCEEDED', [4]]);
    expect(readFileSync(path.join(out, 'attempts-1'), 'utf8')).toBe('x\nx\n');
  });

  it('ends a task that runs past maxRunDuration with exit code 50005, without retrying by default', async () => {
    const name = await createJob(scriptJob('echo $$ > "$OUT/pid"; exec sleep 300', {}, { maxRunDuration: { seconds: 1 } }));
    await jobEnded(name);
    const [task] = await tasksOf(name);
    expect([task!.status?.state, exitCodes(task!)]).toEqual(['FAILED', [PAST_MAX_RUN_DURATION]]);
    expect(isAlive(Number(readFileSync(path.join(out, 'pid'), 'utf8')), null)).toBe(false);
  });

  it('resolves secret variables from Secret Manager names, and fails a task whose secret is unknown', async () => {
    const script = 'printf %s "$TOKEN" > "$OUT/token-$BATCH_TASK_INDEX"';
    const known = await createJob(scriptJob(script, {}, { environment: { variables: { OUT: out }, secretVariables: { TOKEN: SECRET } } }));
    const unknown = await createJob(scriptJob(script, {}, { environment: { variables: { OUT: out }, secretVariables: { TOKEN: `${SECRET}0` } } }));
    expect((await jobEnded(known)).state).toBe('SUCCEEDED');
    expect(readFileSync(path.join(out, 'token-0'), 'utf8')).toBe('s3cret');
    expect((await jobEnded(unknown)).state).toBe('FAILED');
    expect(readFileSync(standin.logFile(unknown, 0), 'utf8')).toContain(`secret ${SECRET}0 (for TOKEN) not found`);
  });

  it('deleteJob kills the running tasks before it returns; the job is then NOT_FOUND (err.code 5)', async () => {
    const name = await createJob(scriptJob('echo $$ > "$OUT/pid-$BATCH_TASK_INDEX.tmp" && mv "$OUT/pid-$BATCH_TASK_INDEX.tmp" "$OUT/pid-$BATCH_TASK_INDEX"; exec sleep 300', { taskCount: 2 }));
    const pidFiles = [0, 1].map((i) => path.join(out, `pid-${i}`));
    await waitFor(() => pidFiles.every((f) => existsSync(f)), 30_000, 'both tasks to start');
    const pids = pidFiles.map((f) => Number(readFileSync(f, 'utf8')));
    const [operation] = await client.deleteJob({ name });
    expect(operation.done).toBe(true);
    await operation.promise();
    expect(pids.filter((p) => isAlive(p, null))).toEqual([]);
    expect((await rejection(client.getJob({ name }))).code).toBe(5);
  });

  it('listTasks pages through every task, listJobs through every job', async () => {
    const name = await createJob(scriptJob('true', { taskCount: 5 }));
    await jobEnded(name);
    const before = standin.requests();
    const names: string[] = [];
    for await (const t of client.listTasksAsync({ parent: `${name}/taskGroups/group0`, pageSize: 2 }, { autoPaginate: false })) names.push(t.name!);
    expect(names).toEqual([0, 1, 2, 3, 4].map((i) => `${name}/taskGroups/group0/tasks/${i}`));
    expect(standin.requests().listTasks).toBe(before.listTasks! + 3);
    const jobNames: string[] = [];
    for await (const j of client.listJobsAsync({ parent: PARENT, pageSize: 1 }, { autoPaginate: false })) jobNames.push(j.name!);
    expect(jobNames).toContain(name);
    expect(standin.requests().listJobs).toBe((before.listJobs ?? 0) + jobNames.length);
  });

  it('refuses a container runnable unless told to run containers as local commands', async () => {
    const job: IJob = { taskGroups: [{ taskSpec: { runnables: [{ container: { imageUri: 'busybox', entrypoint: '/bin/sh', commands: ['-c', 'echo "in $BATCH_TASK_INDEX" > "$OUT/container"'] } }], environment: { variables: { OUT: out } } } }] };
    const err = await rejection(createJob(job));
    expect([err.code, err.message]).toEqual([3, `Invalid value at 'job.taskGroups[0].taskSpec.runnables[0].container': container runnables run only with the stand-in option runContainersLocally`]);
    const local = await startBatchStandin({ runContainersLocally: true });
    const localClient = await openBatchClient({ root: tmp, ...local.clientOptions });
    try {
      const [created] = await localClient.createJob({ parent: PARENT, jobId: 'container', job });
      expect((await local.waitFor((e) => e.job === created.name && e.task === undefined && e.state === 'SUCCEEDED')).state).toBe('SUCCEEDED');
      expect(readFileSync(path.join(out, 'container'), 'utf8')).toBe('in 0\n');
    } finally {
      await localClient.close();
      await local.close();
    }
  });

  it('a duplicate job id is ALREADY_EXISTS (err.code 6)', async () => {
    const [first] = await client.createJob({ parent: PARENT, jobId: `dup-${jobs}`, job: scriptJob('true') });
    const err = await rejection(client.createJob({ parent: PARENT, jobId: `dup-${jobs}`, job: scriptJob('true') }));
    expect(err.code).toBe(6);
    await jobEnded(first.name!);
  });
});

describe('openBatchClient credentials', () => {
  const saved: Record<string, string | undefined> = {};
  const ENV = { HOME: '', CLOUDSDK_CONFIG: '', GOOGLE_APPLICATION_CREDENTIALS: undefined, METADATA_SERVER_DETECTION: 'none' };
  let fresh: BatchStandin;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'batch-creds-'));
    // No ADC anywhere: an empty home and gcloud folder, no key file variable, not on GCE.
    for (const [k, v] of Object.entries({ ...ENV, HOME: root, CLOUDSDK_CONFIG: path.join(root, 'gcloud') })) {
      saved[k] = process.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await fresh?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const withoutToken = () => {
    const { token: _, ...endpoint } = fresh.clientOptions;
    return endpoint;
  };

  it('no credentials: a one-line UserError before any request', async () => {
    fresh = await startBatchStandin();
    const err = await rejection(openBatchClient({ root, ...withoutToken() }));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(
      'no Google Cloud credentials found; run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS=<service-account key file> in .env',
    );
    expect(fresh.requests()).toEqual({});
  });

  it('a key file named in .env that is missing or not a key: a one-line UserError naming .env', async () => {
    writeFileSync(path.join(root, '.env'), 'GOOGLE_APPLICATION_CREDENTIALS=keys/missing.json\n');
    const missing = await rejection(openBatchClient({ root, ...withoutToken() }));
    expect(missing).toBeInstanceOf(UserError);
    expect(missing.message).toBe(
      `.env: GOOGLE_APPLICATION_CREDENTIALS: no such file ${path.join(root, 'keys/missing.json')}; set it to a service-account key file (JSON)`,
    );
    writeFileSync(path.join(root, 'not-a-key.json'), '{}');
    writeFileSync(path.join(root, '.env'), 'GOOGLE_APPLICATION_CREDENTIALS=not-a-key.json\n');
    const wrong = await rejection(openBatchClient({ root, ...withoutToken() }));
    expect(wrong).toBeInstanceOf(UserError);
    expect(wrong.message).toMatch(new RegExp(`^\\.env: GOOGLE_APPLICATION_CREDENTIALS: ${path.join(root, 'not-a-key.json')} is not a usable key file \\(.+\\); download a service-account key \\(JSON\\)$`));
    expect(fresh.requests()).toEqual({});
  });

  it('a service-account key file named in .env signs the requests itself (no token endpoint)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'switchyard@test-project.iam.gserviceaccount.com';
    await fresh.close();
    fresh = await startBatchStandin({ serviceAccounts: { [email]: publicKey.export({ type: 'spki', format: 'pem' }).toString() } });
    const key = { type: 'service_account', project_id: 'test-project', private_key_id: 'k1', client_email: email, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
    writeFileSync(path.join(root, 'key.json'), JSON.stringify(key));
    writeFileSync(path.join(root, '.env'), 'GOOGLE_APPLICATION_CREDENTIALS=key.json\n');
    const keyed = await openBatchClient({ root, ...withoutToken() });
    try {
      expect((await rejection(keyed.getJob({ name: `${PARENT}/jobs/none` }))).code).toBe(5);
      expect(fresh.requests()).toEqual({ getJob: 1 });
    } finally {
      await keyed.close();
    }
  });
});
