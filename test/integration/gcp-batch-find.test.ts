// GcpBatchBackend.findSubmitted against the Batch stand-in with the real client: a job its
// attempts' submit made is found by the ID they name (the handles a submit answers), one never
// made is not, nothing is created by looking, and an API that does not answer is one line.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { BatchServiceClient } from '@google-cloud/batch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcpBatchBackend } from '../../scripts/lib/backends/gcp-batch.js';
import { openBatchClient } from '../../scripts/lib/batch/client.js';
import { batchJobId } from '../../scripts/lib/batch/gcp-names.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import type { Store } from '../../scripts/lib/store/store.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { startBatchStandin, type BatchStandin } from '../helpers/batch-standin/index.js';

const PARENT = 'projects/test-project/locations/us-central1';
const secrets = { AWS_ACCESS_KEY_ID: 'projects/test-project/secrets/id/versions/1', AWS_SECRET_ACCESS_KEY: 'projects/test-project/secrets/key/versions/1' };
const config = ConfigSchema.parse({ defaults: { store: 's3://bucket/team' }, batch: { cpu: { project: 'test-project', region: 'us-central1', machine_type: 'e2-standard-2', secrets } } });

let standin: BatchStandin;
let client: BatchServiceClient;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'gcp-batch-find-'));
  standin = await startBatchStandin({ holdTasks: true });
  client = await openBatchClient({ root: tmp, ...standin.clientOptions });
});
afterAll(async () => {
  await client?.close();
  await standin?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const backendOn = (openClient: () => Promise<BatchServiceClient>) =>
  new GcpBatchBackend({ entry: 'cpu', config, projectRoot: tmp, stateDir: tmp, store: {} as Store, runnerBundle: path.join(tmp, 'r.mjs'), openClient });

const RUN = 'knn-default-20261204T0900-0badf00d';
const attempts = (n: number) => [0, 1].map((i) => ({ run_id: RUN, unit_id: `${RUN}/shards/${i}`, attempt: n }) as AttemptSpec);
const subs = (specs: AttemptSpec[]) => specs.map((spec) => ({ spec, slot: 'cpu' }));

describe('gcp-batch findSubmitted', () => {
  it('finds the job its attempts named, task by task, and creates nothing; attempts never submitted are not found', async () => {
    const sent = attempts(1);
    await client.createJob({
      parent: PARENT,
      jobId: batchJobId(sent),
      job: {
        taskGroups: [{ taskCount: 2, taskSpec: { runnables: [{ script: { text: 'true' } }] } }],
        allocationPolicy: { instances: [{ policy: { machineType: 'e2-standard-2', provisioningModel: 'SPOT' } }] },
        logsPolicy: { destination: 'CLOUD_LOGGING' },
      },
    });
    const created = standin.requests().createJob;
    const backend = backendOn(async () => client);
    const job = `${PARENT}/jobs/${batchJobId(sent)}`;
    expect(await backend.findSubmitted(subs(sent))).toEqual(sent.map((s, task) => ({ backend: 'gcp-batch', entry: 'cpu', job, task, unit: s.unit_id, attempt: 1 })));
    expect(await backend.findSubmitted(subs(attempts(2)))).toEqual([null, null]);
    expect(await backend.findSubmitted(subs(sent.slice(1)))).toEqual([null]); // another grouping names another job
    expect(standin.requests().createJob).toBe(created);
  });

  it('an API that does not answer: one line, never "not found"', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const dead = await openBatchClient({ root: tmp, ...standin.clientOptions, apiEndpoint: '127.0.0.1', port: closed });
    try {
      const err = await backendOn(async () => dead)
        .findSubmitted(subs(attempts(1)))
        .then(
          () => null,
          (e: Error) => e,
        );
      expect(err).toBeInstanceOf(UserError);
      expect(err!.message).toMatch(/^Batch: .*ECONNREFUSED/);
      expect(err!.message).not.toContain('\n');
    } finally {
      await dead.close();
    }
  });
});
