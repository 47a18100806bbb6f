// A task of a rendered Batch job, run here as a Batch VM runs it: bash with the job's environment
// (its secret variables resolved, BATCH_TASK_INDEX set), and nothing else of this machine's,
// against a real S3 server. It fetches the Node runtime, the runner and the code by SHA-256,
// runs its own unit into the store with the declared secret, and refuses an object whose bytes
// are not the ones the job names, before anything runs. s3rver does not check signatures, so
// the requests' SigV4 is checked against the AWS SDK's own signer.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchTarget, renderBatchJob, type BatchArtifacts, type BatchJob } from '../../scripts/lib/batch/render-job.js';
import { blobKey, TASK_SCRIPT } from '../../scripts/lib/batch/task-script.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { sha256Hex } from '../../scripts/lib/hash.js';
import { S3Store } from '../../scripts/lib/store/s3-store.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { REPO } from '../helpers/sandbox.js';
import { S3RVER_KEYS, startS3rver, type S3rver } from '../helpers/s3rver.js';

const RUN = 'demo-default-20261130T1200-0badf00d';
const TOKEN = 'hf-token-value-0123456789';

let tmp: string;
let s3: S3rver;
let store: S3Store;
let artifacts: BatchArtifacts;
let code: Buffer;

async function upload(data: Buffer): Promise<string> {
  const sha = sha256Hex(data);
  await store.putBytes(blobKey(sha), data);
  return sha;
}

/** `tar -czf` of a folder's contents. */
const tarGz = (dir: string) => execFileSync('tar', ['-czf', '-', '-C', dir, '.']);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'batch-task-'));
  s3 = await startS3rver();
  store = new S3Store(`s3://${s3.bucket}/team`, { endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_KEYS });
  const runner = path.join(REPO, 'dist/runner/run-attempt.mjs');
  if (!existsSync(runner)) execFileSync(process.execPath, ['build.mjs'], { cwd: REPO });
  // npm's node-linux-<arch> package holds package/bin/node; this one points at this machine's Node.
  mkdirSync(path.join(tmp, 'node/package/bin'), { recursive: true });
  symlinkSync(process.execPath, path.join(tmp, 'node/package/bin/node'));
  // The project as packed at its code pin: one experiment that checks its environment.
  mkdirSync(path.join(tmp, 'project/exp'), { recursive: true });
  writeFileSync(
    path.join(tmp, 'project/exp/run.sh'),
    [
      'test "$HF_TOKEN" = "$WANT_TOKEN" || { echo "HF_TOKEN did not arrive" >&2; exit 3; }',
      'test -z "${AWS_SECRET_ACCESS_KEY:-}" || { echo "the store key leaked into the experiment" >&2; exit 4; }',
      'echo "unit $SWITCHYARD_SHARD_INDEX of $SWITCHYARD_SHARD_COUNT, attempt $SWITCHYARD_ATTEMPT" > "$SWITCHYARD_OUTPUT_DIR/out.txt"',
    ].join('\n'),
  );
  artifacts = {
    node: await upload(execFileSync('tar', ['-czf', '-', '-C', path.join(tmp, 'node'), 'package'])),
    runner: await upload(gzipSync(readFileSync(runner))),
    code: await upload((code = tarGz(path.join(tmp, 'project')))),
  };
}, 60_000);

afterAll(async () => {
  store?.close?.();
  await s3?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function job(a: BatchArtifacts, endpoint = s3.endpoint): BatchJob {
  const config = ConfigSchema.parse({
    defaults: { store: `s3://${s3.bucket}/team`, s3: { endpoint, region: 'us-east-1', force_path_style: true } },
    batch: {
      cpu: {
        project: 'my-project',
        region: 'us-central1',
        machine_type: 'e2-standard-2',
        secrets: {
          AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/key-id/versions/1',
          AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/key/versions/1',
          HF_TOKEN: 'projects/my-project/secrets/hf/versions/1',
        },
      },
    },
  });
  const units = [0, 1].map((i) =>
    testAttemptSpec({ run_id: RUN, unit_id: `${RUN}/shards/${i}`, command: ['sh', 'run.sh'], cwd: 'exp', shard_index: i, shard_count: 2, secrets: ['HF_TOKEN'], env: { WANT_TOKEN: TOKEN }, store: 'file://.switchyard/store' }),
  );
  return renderBatchJob(units, batchTarget(config, 'cpu', a));
}

/** Runs task `index` of the job as Batch would: its variables, its secrets resolved, a fresh VM's PATH. */
function runTask(j: BatchJob, index: number, vm: string): Promise<{ code: number | null; out: string }> {
  const group = j.taskGroups![0]!;
  const resolved: Record<string, string> = { AWS_ACCESS_KEY_ID: S3RVER_KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_KEYS.secretAccessKey, HF_TOKEN: TOKEN };
  const secrets = Object.fromEntries(Object.keys(group.taskSpec!.environment!.secretVariables!).map((k) => [k, resolved[k]!]));
  const env = { ...group.taskSpec!.environment!.variables, ...secrets, BATCH_TASK_INDEX: String(index), BATCH_TASK_COUNT: String(group.taskCount), TMPDIR: vm, HOME: vm, PATH: process.env.PATH! };
  const script = group.taskSpec!.runnables![0]!.script!.text!;
  expect(script).toBe(TASK_SCRIPT);
  const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

describe('a Batch task', () => {
  it('fetches and checks what it runs, then runs its own unit into the store', async () => {
    const vm = path.join(tmp, 'vm1');
    mkdirSync(vm);
    const { code: exit, out } = await runTask(job(artifacts), 1, vm);
    expect(exit, out).toBe(0);
    const status = JSON.parse((await store.getBytes(`runs/${RUN}/shards/1/attempts/1/status.json`))!.toString());
    expect(status).toMatchObject({ run_id: RUN, state: 'succeeded' });
    expect((await store.getBytes(`runs/${RUN}/shards/1/outputs/out.txt`))!.toString()).toBe('unit 1 of 2, attempt 1\n');
    expect(await store.getBytes(`runs/${RUN}/shards/0/attempts/1/status.json`)).toBeNull();
    const task = path.join(vm, 'switchyard/task-1');
    expect(statSync(path.join(task, 'secrets.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path.join(task, 'attempt.json'), 'utf8'))).toMatchObject({ unit_id: `${RUN}/shards/1`, shard_index: 1, attempt: 1, secrets_file: '../secrets.json' });
  }, 60_000);

  it('refuses code whose bytes are not the ones the job names, before anything runs', async () => {
    const vm = path.join(tmp, 'vm2');
    mkdirSync(vm);
    const genuine = blobKey(artifacts.code);
    const forged = tarGz(path.join(tmp, 'node'));
    const { code: exit, out } = await (async () => {
      await store.putBytes(genuine, forged);
      try {
        return await runTask(job(artifacts), 0, vm);
      } finally {
        await store.putBytes(genuine, code);
      }
    })();
    expect(exit).toBe(1);
    expect(out).toContain(`switchyard: code.tar.gz from the store is not the object its SHA-256 ${artifacts.code} names`);
    expect(existsSync(path.join(vm, 'switchyard/task-0/attempt.json'))).toBe(false);
    expect(await store.getBytes(`runs/${RUN}/shards/0/attempts/1/status.json`)).toBeNull();
  }, 60_000);

  it('signs its requests with SigV4 exactly as the AWS SDK signs them', async () => {
    const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url!, headers: req.headers });
      res.end('not the runtime');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const vm = path.join(tmp, 'vm3');
    mkdirSync(vm);
    try {
      const { port } = server.address() as { port: number };
      const { code: exit } = await runTask(job(artifacts, `http://127.0.0.1:${port}`), 0, vm);
      expect(exit).toBe(1); // the answer is not the runtime the job names
    } finally {
      server.close();
    }
    const [{ url, headers }] = seen as [(typeof seen)[0]];
    expect(url).toBe(`/${s3.bucket}/team/blobs/${artifacts.node}`);
    const date = headers['x-amz-date'] as string;
    /** node:crypto in the shape the signer takes: a hash, or an HMAC when given a key */
    const bytes = (d: SourceData) => (typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d));
    class NodeSha256 {
      private readonly h;
      constructor(key?: SourceData) {
        this.h = key ? createHmac('sha256', bytes(key)) : createHash('sha256');
      }
      update(data: SourceData) {
        this.h.update(bytes(data));
      }
      async digest() {
        return new Uint8Array(this.h.digest());
      }
    }
    const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: S3RVER_KEYS, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    const signed = await signer.sign(
      { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', path: url, query: {}, headers: { host: headers.host!, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      { signingDate: new Date(date.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')) },
    );
    expect(headers.authorization).toBe(signed.headers.authorization);
  }, 60_000);
});
