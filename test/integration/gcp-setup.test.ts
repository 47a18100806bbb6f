// make gcp-setup's checks, through the real google-auth-library client, against the Batch
// stand-in's Resource Manager and Service Usage: each check passing, then each failing with its
// one line and fix. No credentials at all is one line before any request.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIS, gcpSetup, PERMISSIONS, type SetupCheck } from '../../scripts/lib/batch/setup-checks.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { startBatchStandin, type BatchStandin } from '../helpers/batch-standin/index.js';

const secrets = { AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/id/versions/1', AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/key/versions/1' };
const config = ConfigSchema.parse({ defaults: { store: 's3://bucket/team' }, batch: { cpu: { project: 'my-project', region: 'us-central1', machine_type: 'e2-standard-2', secrets } } });

let standin: BatchStandin;
let root: string;

beforeAll(async () => {
  standin = await startBatchStandin();
  root = mkdtempSync(path.join(os.tmpdir(), 'gcp-setup-'));
});
afterAll(async () => {
  await standin?.close();
  rmSync(root, { recursive: true, force: true });
});

async function checks(token = standin.clientOptions.token, env: NodeJS.ProcessEnv = {}): Promise<{ failed: number; lines: string[] }> {
  const { apiEndpoint, port } = standin.clientOptions;
  const seen: SetupCheck[] = [];
  const failed = await gcpSetup({ root, config, env: { SWITCHYARD_BATCH_ENDPOINT: `http://${apiEndpoint}:${port}`, SWITCHYARD_BATCH_TOKEN: token, ...env }, say: (c) => seen.push(c) });
  expect(seen.filter((c) => !c.ok)).toHaveLength(failed);
  return { failed, lines: seen.map((c) => `${c.ok ? '✓' : '✗'} ${c.line}`) };
}

describe('make gcp-setup', () => {
  it('passes with the project, both APIs and every permission', async () => {
    standin.projects['my-project'] = { services: APIS.map(([s]) => s), granted: [...PERMISSIONS] };
    const { failed, lines } = await checks();
    expect(failed).toBe(0);
    expect(lines.slice(1)).toEqual([
      '✓ project my-project: active',
      '✓ Batch API (batch.googleapis.com) enabled in my-project',
      '✓ Secret Manager API (secretmanager.googleapis.com) enabled in my-project',
      `✓ permissions in my-project: 6 of 6 (${PERMISSIONS.join(', ')})`,
    ]);
    expect(lines[0]).toMatch(/^✓ credentials: the emulator's token/);
  });

  it('names each missing API and permission, with the command that fixes it', async () => {
    standin.projects['my-project'] = { services: ['batch.googleapis.com'], granted: PERMISSIONS.filter((p) => p !== 'batch.jobs.delete' && p !== 'iam.serviceAccounts.actAs') };
    const { failed, lines } = await checks();
    expect(failed).toBe(2);
    expect(lines).toContain('✗ Secret Manager API (secretmanager.googleapis.com) not enabled in my-project; gcloud services enable secretmanager.googleapis.com --project my-project');
    expect(lines).toContain(
      '✗ permissions in my-project: batch.jobs.delete, iam.serviceAccounts.actAs missing; grant roles/batch.jobsEditor and roles/iam.serviceAccountUser: gcloud projects add-iam-policy-binding my-project --member=user:<your account> --role=roles/batch.jobsEditor && gcloud projects add-iam-policy-binding my-project --member=user:<your account> --role=roles/iam.serviceAccountUser',
    );
  });

  it('a project it cannot see, or credentials refused: one line each, nothing more checked there', async () => {
    delete standin.projects['my-project'];
    const unknown = await checks();
    expect(unknown.lines.slice(1)).toEqual([
      '✗ project my-project: not found, or these credentials cannot see it (403 PERMISSION_DENIED: The caller does not have permission, or project my-project does not exist); check cluster_fleet_config.ts: batch.cpu.project (gcloud projects list names the ones you can use)',
    ]);
    const refused = await checks('not-the-token');
    expect(refused.lines.slice(1)).toEqual([
      expect.stringMatching(/^✗ credentials: refused by Google \(401 UNAUTHENTICATED: .+\); run `gcloud auth application-default login` again, or download a new service-account key$/),
    ]);
  });

  it('no credentials at all: one line, before any request', async () => {
    const before = standin.requests();
    const seen: SetupCheck[] = [];
    const saved = { HOME: process.env.HOME, CLOUDSDK_CONFIG: process.env.CLOUDSDK_CONFIG, GOOGLE_APPLICATION_CREDENTIALS: process.env.GOOGLE_APPLICATION_CREDENTIALS, METADATA_SERVER_DETECTION: process.env.METADATA_SERVER_DETECTION };
    Object.assign(process.env, { HOME: root, CLOUDSDK_CONFIG: path.join(root, 'gcloud'), METADATA_SERVER_DETECTION: 'none' });
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    try {
      expect(await gcpSetup({ root, config, env: {}, say: (c) => seen.push(c) })).toBe(1);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(seen).toEqual([
      { ok: false, line: 'credentials: no Google Cloud credentials found; run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS=<service-account key file> in .env' },
    ]);
    expect(standin.requests()).toEqual(before);
  });
});
