// The fleet route with an S3 store: two real sshd hosts in network namespaces and a real S3
// server (s3rver) listening where both this machine and the hosts reach it. Each shard's runner
// writes checkpoints and outputs straight to the shared store with the credentials bootstrap
// pushed as a 0600 file, so a shard that moves off a lost host resumes from the store itself
// (nothing is mirrored home), and the merge reads every shard from S3.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3RVER_KEYS, s3rverObjectPath, startS3rver, useS3rverStore, type S3rver } from '../helpers/s3rver.js';
import { createSandbox, shardCommits, waitFor, type Sandbox } from '../helpers/sandbox.js';
import { inventoryEntries, startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

let sb: Sandbox;
let hosts: TestHosts;
let s3: S3rver;
const PREFIX = 'team/runs';

beforeAll(async () => {
  hosts = await startTestHosts(2, { prefix: 'syfls3' });
  s3 = await startS3rver('switchyard-fleet', hosts.gateway);
  sb = createSandbox();
  const entries = inventoryEntries(hosts);
  useS3rverStore(sb.dir, s3, PREFIX);
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  writeFileSync(
    config,
    readFileSync(config, 'utf8')
      .replace('  hosts: {},', `  hosts: {\n${entries.join('\n')}\n  },`)
      .replace('  fleets: {},', `  fleets: {\n    pair: { hosts: ['h1', 'h2'], lost_after_sec: 2 },\n  },`),
  );
  const base = readFileSync(path.join(sb.dir, 'competitions/knn/experiment.yaml'), 'utf8');
  // Slow enough to lose a host in the middle: a pause after each unit of a shard.
  writeFileSync(
    path.join(sb.dir, 'competitions/knn/experiments/slow.yaml'),
    base.replace('count: 1', 'count: 4').replace('  checkpoint_every_sec: 1', '  checkpoint_every_sec: 0.5\n  env: { KNN_UNIT_PAUSE_SEC: "1" }'),
  );
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'test fleet on s3']);
  const r = sb.make(['bootstrap', 'fleet=pair'], { timeoutMs: 300_000 });
  expect(r.code, r.stdout + r.stderr).toBe(0);
}, 600_000);

afterAll(async () => {
  await hosts?.cleanup();
  await s3?.stop();
  sb?.cleanup();
});

/** An object of the run store, read where s3rver keeps it. */
const stored = (key: string) => readFileSync(s3rverObjectPath(s3, `${PREFIX}/${key}`), 'utf8');
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];

describe('fleet search on an S3 store', () => {
  it('shards write to S3 from the hosts; a lost host\'s shards resume from S3 elsewhere; the merge reads S3', async () => {
    // The reference: the unsharded search on the laptop, into the same store.
    const local = sb.make(['train', 'experiment=knn'], { timeoutMs: 300_000 });
    expect(local.code, local.stdout + local.stderr).toBe(0);
    const reference = stored(`runs/${runIdIn(local.stdout + local.stderr)}/outputs/shard-0-of-1.jsonl`).split('\n').slice(1).join('\n');

    const p = sb.spawnMake(['fleet-search', 'experiment=knn/slow', 'fleet=pair']);
    // A checkpoint of shard 1 (on h2) committed to S3: what the move resumes from.
    await waitFor(() => shardCommits(sb, runIdIn(p.output()), 1).length > 0, 120_000, 'a committed checkpoint of shard 1 on h2');
    await hosts.stopSshd('h2');
    const code = await new Promise((r) => p.on('close', r));
    const out = p.output();
    expect(code, out).toBe(0);
    const id = runIdIn(out)!;
    expect(out).toMatch(/shard 1 moved from h2 to h1 \(resumes from checkpoint step [1-9]\d*\)/);

    const run = JSON.parse(stored(`runs/${id}/run.json`));
    expect(run.shards[1].moved_from).toEqual(['h2']);
    expect(run.shards[1].attempts.at(-1).handle.host).toBe('h1');
    expect(run.shards[1].attempts.at(-1).restored_step).toBeGreaterThan(0);
    expect(stored(`runs/${id}/outputs/merged.jsonl`)).toBe(reference);
    const report = JSON.parse(stored(`runs/${id}/merge-report.json`));
    expect(report.shards.map((s: { records: number }) => s.records).reduce((a: number, b: number) => a + b)).toBe(30);

    // The runners used the shared store, not a store of the host's own.
    const h1 = hosts.hosts[0]!.home;
    expect(existsSync(path.join(h1, 'switchyard/store'))).toBe(false);
    expect(existsSync(path.join(h1, `switchyard/scratch/${id}/shards/1/attempts/2/status.json`))).toBe(true);
    // Its credentials: pushed by bootstrap, owner-only.
    const secrets = path.join(h1, 'switchyard/secrets.json');
    expect(statSync(secrets).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(secrets, 'utf8'))).toMatchObject({ AWS_SECRET_ACCESS_KEY: S3RVER_KEYS.secretAccessKey });
    expect(out).not.toContain(S3RVER_KEYS.secretAccessKey);

    const verify = sb.make(['verify'], { timeoutMs: 120_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    await hosts.startSshd('h2');
  }, 300_000);
});
