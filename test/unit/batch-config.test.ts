// The `batch:` entries of cluster_fleet_config.ts: bad input is one line (file, field, fix)
// when the config loads, before any job is rendered or any API is called.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { BatchSchema } from '../../scripts/lib/config/batch-config.js';
import { BATCH_REGIONS } from '../../scripts/lib/config/batch-regions.js';
import type { BatchConfig } from '../../scripts/lib/config/define-config.js';
import { loadConfig } from '../../scripts/lib/config/load-config.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { REPO } from '../helpers/sandbox.js';

// What editors see (define-config.ts) is what the schema takes.
const _sameShape: z.input<typeof BatchSchema> = {} as BatchConfig;
void _sameShape;

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'batch-config-'));
  mkdirSync(path.join(root, 'scripts/lib/config'), { recursive: true });
  cpSync(path.join(REPO, 'scripts/lib/config/define-config.ts'), path.join(root, 'scripts/lib/config/define-config.ts'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const SECRETS = `{ AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/key-id/versions/latest', AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/key/versions/3' }`;
const ENTRY = `project: 'my-project', region: 'us-central1', machine_type: 'n2-standard-4', store: 's3://bucket/sy', secrets: ${SECRETS}`;

function load(body: string) {
  writeFileSync(
    path.join(root, 'cluster_fleet_config.ts'),
    `import { defineConfig } from './scripts/lib/config/define-config.js';\nexport default defineConfig({\n${body}\n});\n`,
  );
  return loadConfig(root);
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message.split('\n')).toHaveLength(1);
  return (err as Error).message;
}

describe('batch entries in cluster_fleet_config.ts', () => {
  it('fills in the defaults: spot, 3 Batch reruns, 24h, no GPUs', async () => {
    const config = await load(`batch: { cpu: { ${ENTRY} } }`);
    expect(config.batch.cpu).toMatchObject({ provisioning: 'spot', retries: 3, max_run_duration: '24h', accelerators: [], no_external_ip: false });
  });

  it('takes the commented example in the shipped cluster_fleet_config.ts as it is', async () => {
    const shipped = readFileSync(path.join(REPO, 'cluster_fleet_config.ts'), 'utf8').split('\n');
    const start = shipped.findIndex((l) => l.startsWith('  //   gpu: {'));
    const end = shipped.findIndex((l, i) => i > start && l === '  //   },');
    expect(start).toBeGreaterThan(0);
    const example = shipped.slice(start, end + 1).map((l) => l.replace(/^ {2}\/\/ {3}/, '    '));
    const config = await load(`batch: {\n${example.join('\n')}\n}`);
    expect(config.batch.gpu).toMatchObject({ machine_type: 'g2-standard-8', accelerators: [{ type: 'nvidia-l4', count: 1 }], parallelism: 4 });
  });

  it('refuses a floating image tag, naming the digest form and how to find it', async () => {
    expect(await errorOf(load(`batch: { gpu: { ${ENTRY}, image: 'pytorch/pytorch:2.3.0-cuda12.1' } }`))).toBe(
      'cluster_fleet_config.ts: batch.gpu.image: "pytorch/pytorch:2.3.0-cuda12.1" is not pinned by digest: a tag can move, and the image is part of the env pin; use "pytorch/pytorch@sha256:<64 hex>" (docker buildx imagetools inspect pytorch/pytorch:2.3.0-cuda12.1 prints it)',
    );
    const digest = `sha256:${'ab'.repeat(32)}`;
    const pinned = await load(`batch: { gpu: { ${ENTRY}, image: 'pytorch/pytorch:2.3.0@${digest}' } }`);
    expect(pinned.batch.gpu!.image).toBe(`pytorch/pytorch:2.3.0@${digest}`);
  });

  it('refuses a missing project with an example', async () => {
    const msg = await errorOf(load(`batch: { gpu: { region: 'us-central1', machine_type: 'n2-standard-4', store: 's3://b/p', secrets: ${SECRETS} } }`));
    expect(msg).toBe('cluster_fleet_config.ts: batch.gpu.project: required, e.g. "my-project"');
  });

  it('refuses a secret given as a literal value, without repeating the value', async () => {
    const literal = 'hf_Zq3LiteralTokenValue';
    const msg = await errorOf(load(`batch: { gpu: { ${ENTRY.replace('secrets: {', `secrets: { HF_TOKEN: '${literal}',`)} } }`));
    expect(msg).toBe(
      'cluster_fleet_config.ts: batch.gpu.secrets.HF_TOKEN: not a Secret Manager secret version (a job never holds a secret\'s value); store the value in Secret Manager and name its version, e.g. "projects/my-project/secrets/hf-token/versions/latest"',
    );
    expect(msg).not.toContain(literal);
  });

  it("refuses an entry without the store's credentials", async () => {
    const msg = await errorOf(load(`batch: { gpu: { ${ENTRY.replace(/secrets: .*$/, "secrets: { AWS_ACCESS_KEY_ID: 'projects/p/secrets/k/versions/1' }")} } }`));
    expect(msg).toBe('cluster_fleet_config.ts: batch.gpu.secrets: AWS_SECRET_ACCESS_KEY is missing: tasks reach the store with it; add AWS_SECRET_ACCESS_KEY: "projects/my-project/secrets/<name>/versions/latest"');
  });

  it('refuses an unknown region, suggesting the Batch regions of its area', async () => {
    expect(await errorOf(load(`batch: { gpu: { ${ENTRY.replace('us-central1', 'us-central7')} } }`))).toBe(
      'cluster_fleet_config.ts: batch.gpu.region: "us-central7" is not a Batch region; use one of us-central1, us-east1, us-east4, us-east5, us-south1, us-west1, us-west2, us-west3, us-west4 (scripts/lib/config/batch-regions.ts lists them all)',
    );
    expect(await errorOf(load(`batch: { gpu: { ${ENTRY.replace('us-central1', 'moon-base1')} } }`))).toContain('"moon-base1" is not a Batch region; use a Batch region, e.g. us-central1');
    expect(BATCH_REGIONS).toContain('europe-west4');
  });

  it('refuses allowed locations outside the region', async () => {
    expect(await errorOf(load(`batch: { gpu: { ${ENTRY}, allowed_locations: ['zones/us-central1-a', 'zones/europe-west4-b'] } }`))).toBe(
      "cluster_fleet_config.ts: batch.gpu.allowed_locations.1: zones/europe-west4-b is outside the job's region us-central1; name zones/us-central1-<a|b|c|f> or regions/us-central1",
    );
  });

  it('refuses an entry whose tasks could not reach the store', async () => {
    expect(await errorOf(load(`batch: { gpu: { ${ENTRY.replace("store: 's3://bucket/sy', ", '')} } }`))).toBe(
      'cluster_fleet_config.ts: batch.gpu.store: tasks on Batch cannot reach file://.switchyard/store (defaults.store); set store: "s3://bucket/prefix", any S3-compatible store',
    );
    const shared = await load(`defaults: { store: 's3://team/runs' },\nbatch: { gpu: { ${ENTRY.replace("store: 's3://bucket/sy', ", '')} } }`);
    expect(shared.batch.gpu!.store).toBeUndefined();
  });

  it('names the valid keys on a typo, and refuses a parallelism of 0', async () => {
    expect(await errorOf(load(`batch: { gpu: { ${ENTRY}, machine: 'n2-standard-8' } }`))).toMatch(/^cluster_fleet_config\.ts: batch\.gpu\.machine: unknown key; valid keys here: project, region, .*machine_type/);
    expect(await errorOf(load(`batch: { gpu: { ${ENTRY}, parallelism: 0 } }`))).toBe('cluster_fleet_config.ts: batch.gpu.parallelism: Too small: expected number to be >=1, e.g. 4');
  });
});
