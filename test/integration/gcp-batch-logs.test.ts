// GcpBatchBackend.logs followed: the real Batch client against the stand-in (its task held
// RUNNING until its job is deleted), and the runner's log in an S3 store on s3rver behind a
// proxy that counts the object bytes the server sent. A follow of a growing log transfers each
// byte once, and a character the runner's copy cut in two comes out whole.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BatchServiceClient } from '@google-cloud/batch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcpBatchBackend } from '../../scripts/lib/backends/gcp-batch.js';
import { openBatchClient } from '../../scripts/lib/batch/client.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { runKeys } from '../../scripts/lib/store/run-keys.js';
import { S3Store } from '../../scripts/lib/store/s3-store.js';
import { startBatchStandin, type BatchStandin } from '../helpers/batch-standin/index.js';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js';
import { S3RVER_KEYS, startS3rver, type S3rver } from '../helpers/s3rver.js';

const PARENT = 'projects/test-project/locations/us-central1';
const secrets = { AWS_ACCESS_KEY_ID: 'projects/test-project/secrets/id/versions/1', AWS_SECRET_ACCESS_KEY: 'projects/test-project/secrets/key/versions/1' };

let standin: BatchStandin;
let client: BatchServiceClient;
let server: S3rver;
let proxy: CountingProxy;
let store: S3Store;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'gcp-batch-logs-'));
  [standin, server] = await Promise.all([startBatchStandin({ holdTasks: true }), startS3rver()]);
  client = await openBatchClient({ root: tmp, ...standin.clientOptions });
  proxy = await startCountingProxy(server.endpoint);
  store = new S3Store(`s3://${server.bucket}/team`, { endpoint: proxy.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_KEYS });
});
afterAll(async () => {
  store?.close();
  await proxy?.close();
  await client?.close();
  await Promise.all([standin?.close(), server?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

/** A one-task job the stand-in holds RUNNING; its name once the task runs. */
async function runningJob(): Promise<string> {
  const [job] = await client.createJob({
    parent: PARENT,
    jobId: `logs-${Date.now()}`,
    job: {
      taskGroups: [{ taskSpec: { runnables: [{ script: { text: 'true' } }] } }],
      allocationPolicy: { instances: [{ policy: { machineType: 'e2-standard-2', provisioningModel: 'SPOT' } }] },
      logsPolicy: { destination: 'CLOUD_LOGGING' },
    },
  });
  await standin.waitFor((e) => e.job === job.name && e.task === 0 && e.state === 'RUNNING', { what: 'its task to run' });
  return job.name!;
}

/** The text a follow yields until it holds `wanted`. */
async function textUntil(follow: AsyncIterator<string>, wanted: string): Promise<string> {
  let text = '';
  while (!text.includes(wanted)) {
    const next = await follow.next();
    if (next.done) throw new Error(`the follow ended before ${JSON.stringify(wanted)}; it gave ${JSON.stringify(text)}`);
    text += next.value;
  }
  return text;
}

describe('GcpBatchBackend.logs followed', () => {
  it('reads only the bytes the log gained since its last poll, a character cut between two polls whole', async () => {
    const job = await runningJob();
    const config = ConfigSchema.parse({
      defaults: { store: store.url },
      batch: { cpu: { project: 'test-project', region: 'us-central1', machine_type: 'e2-standard-2', secrets } },
    });
    const backend = new GcpBatchBackend({ entry: 'cpu', config, projectRoot: tmp, stateDir: tmp, store, runnerBundle: path.join(tmp, 'runner.mjs'), openClient: () => Promise.resolve(client) });
    const handle = { backend: 'gcp-batch' as const, entry: 'cpu', job, task: 0, unit: 'r1', attempt: 1 };
    const key = runKeys.attemptFile('r1', 1, 'stdout.log');
    const served = () => proxy.served(`/${server.bucket}/team/${key}`);
    const euro = Buffer.from('€');
    // The runner's copy as two polls see it: the first cut inside '€', the second the whole log.
    const first = Buffer.concat([Buffer.from('epoch 1 loss 0.52\n'), euro.subarray(0, 2)]);
    const whole = Buffer.concat([first, euro.subarray(2), Buffer.from(' spent\nepoch 2 loss 0.31\n')]);

    await store.putBytes(key, first);
    const follow = backend.logs(handle, { follow: true })[Symbol.asyncIterator]();
    let text = await textUntil(follow, 'epoch 1 loss 0.52\n');
    expect(served()).toBe(first.length);
    await store.putBytes(key, whole);
    text += await textUntil(follow, 'epoch 2 loss 0.31\n');
    expect(served()).toBe(whole.length); // each byte once, not the whole log again

    await client.deleteJob({ name: job }); // the task ends (cancelled): the follow reads once more and stops
    expect(await follow.next()).toEqual({ done: true, value: undefined });
    expect(text).toBe(whole.toString('utf8'));
    expect(served()).toBe(whole.length);
  });
});
