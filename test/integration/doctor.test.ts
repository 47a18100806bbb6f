// make doctor against real sshd hosts: one healthy, one with sshd stopped, one whose key in
// known_hosts is wrong, and a store on a read-only disk print ✗ on exactly those three rows,
// each with its fix, and the doctor exits 1. Hosts that never answer are probed at once: the
// doctor takes one connect timeout, not their sum. An S3 store, a real SLURM cluster and Batch
// (its stand-in, through the real client) pass; a key the host refuses, a key file that is not
// there, a key behind a passphrase and a login node without a controller each say so.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIS, PERMISSIONS } from '../../scripts/lib/batch/setup-checks.js';
import { doctorChecks } from '../../scripts/lib/doctor/doctor.js';
import { startBatchStandin } from '../helpers/batch-standin/index.js';
import { REPO } from '../helpers/sandbox.js';
import { S3RVER_KEYS, startS3rver } from '../helpers/s3rver.js';
import { startSlurm } from '../helpers/slurm.js';
import { startTestHosts, type TestHost, type TestHosts } from '../helpers/ssh-hosts.js';
import { mountTmpfs, tmpfsProblem, unmountTmpfs } from '../helpers/tmpfs.js';

const VERB = path.join(REPO, 'dist/scripts/doctor.js');
const noTmpfs = tmpfsProblem();

let hosts: TestHosts;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'doctor-'));
  hosts = await startTestHosts(3, { prefix: 'sydoc' });
}, 120_000);

afterAll(async () => {
  await hosts?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const hostLine = (name: string, h: Pick<TestHost, 'host' | 'port' | 'user' | 'identityFile' | 'knownHosts'>, timeout = 3) =>
  `    ${name}: { host: '${h.host}', port: ${h.port}, user: '${h.user}', identity_file: '${h.identityFile}', known_hosts: '${h.knownHosts}', connect_timeout: ${timeout} },`;

/** A connect timeout no loaded machine reaches, for hosts that answer. */
const PATIENT_SEC = 20;

/** A project folder holding only an inventory (the config loader needs nothing else). */
function project(name: string, store: string, hostLines: string[], fleets: string, more = ''): string {
  const root = path.join(tmp, name);
  mkdirSync(root, { recursive: true });
  writeFileSync(
    path.join(root, 'cluster_fleet_config.ts'),
    `export default {\n  defaults: { store: '${store}' },\n  hosts: {\n${hostLines.join('\n')}\n  },\n  fleets: ${fleets},\n${more}};\n`,
  );
  return root;
}

/** Sets environment variables for the duration of `fn` (the doctor's checks read the process's own). */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe.skipIf(noTmpfs)('make doctor', () => {
  it('marks exactly the stopped host, the wrong host key and the read-only store, each with its fix', async () => {
    const [h1, h2, h3] = hosts.hosts as [TestHost, TestHost, TestHost];
    await hosts.stopSshd('h2');
    // h3's entry in its known_hosts holds h1's key: the key it presents does not match.
    const wrongKnownHosts = path.join(tmp, 'wrong_known_hosts');
    const h1Key = readFileSync(h1.knownHosts, 'utf8').split('\n').find((l) => l.startsWith(h1.port === 22 ? `${h1.host} ` : `[${h1.host}]:${h1.port} `))!;
    writeFileSync(wrongKnownHosts, `${h3.port === 22 ? h3.host : `[${h3.host}]:${h3.port}`} ${h1Key.split(' ').slice(1).join(' ')}\n`);
    const disk = path.join(tmp, 'ro-store');
    mkdirSync(disk);
    mountTmpfs(disk, 'size=1g,ro');
    try {
      const root = project('three', `file://${disk}`, [hostLine('h1', h1), hostLine('h2', h2), hostLine('h3', { ...h3, knownHosts: wrongKnownHosts })], `{ lab: ['h1', 'h2', 'h3'] }`);
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [VERB], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      const elapsed = Date.now() - t0;
      const crossed = r.stdout.split('\n').filter((l) => l.startsWith('✗'));
      expect(crossed.map((l) => l.split(/\s{2,}/).slice(1, 3).join(' ')), r.stdout).toEqual(['store writable', 'host h2 reachable', 'host h3 known_hosts']);
      const [readOnly, down, wrongKey] = crossed as [string, string, string];
      expect(down).toMatch(/connection refused.*start sshd on/);
      expect(wrongKey).toMatch(/HOST KEY CHANGED/);
      expect(wrongKey).toContain(`ssh-keygen -R '[${h3.host}]:${h3.port}'`.replace(/'\[(.*?)\]:22'/, '$1'));
      expect(wrongKey).toMatch(/ssh-keyscan/);
      expect(readOnly).toMatch(/read-only file system.*remount it read-write/);
      // h1 answers, the stopped host's known_hosts entry is not compared, the fleet still has h1
      expect(r.stdout).toMatch(/✓\s+host h1\s+reachable\s+ssh in \d+ ms/);
      expect(r.stdout).toMatch(/-\s+host h2\s+known_hosts\s+.*not compared/);
      expect(r.stdout).toMatch(/✓\s+fleet lab\s+hosts\s+1 of 3 hosts ready; h2, h3 not/);
      // each row says how long its check took
      expect(r.stdout.split('\n').filter((l) => /^[✓✗!-] /.test(l)).every((l) => / \d+ ms( |$)/.test(l))).toBe(true);
      expect(r.stdout).toMatch(/doctor: 3 needed checks failed/);
      expect(r.status).toBe(1);
      // within the longest single check's limit (the store's) plus 1 s
      const { longestTimeoutMs } = await doctorChecks(root);
      expect(elapsed).toBeLessThan(longestTimeoutMs + 1000);

      // host=h2 narrows the table to that host's rows
      const one = spawnSync(process.execPath, [VERB], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, host: 'h2' } });
      const groups = new Set(one.stdout.split('\n').slice(1).filter((l) => /^[✓✗-] /.test(l)).map((l) => l.split(/\s{2,}/)[1]));
      expect([...groups]).toEqual(['host h2']);
      expect(one.status).toBe(1);
    } finally {
      unmountTmpfs(disk);
      await hosts.startSshd('h2');
    }
  }, 120_000);

  it('probes hosts that never answer at once: one connect timeout, not their sum', async () => {
    // Each accepts the TCP connection and never says a word: the ssh handshake runs into its timeout.
    const silent = net.createServer(() => {}).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const h1 = hosts.hosts[0]!;
      const names = ['s1', 's2', 's3', 's4', 's5', 's6'];
      const timeoutSec = 1.5;
      const root = project('silent', `file://${path.join(tmp, 'store')}`, names.map((n) => hostLine(n, { ...h1, host: '127.0.0.1', port }, timeoutSec)), `{ dark: ${JSON.stringify(names)} }`);
      const t0 = Date.now();
      const { rows } = await doctorChecks(root);
      const elapsed = Date.now() - t0;
      const reach = rows.filter((r) => r.name === 'reachable' && r.group.startsWith('host s'));
      expect(reach.map((r) => r.ok)).toEqual(names.map(() => false));
      for (const r of reach) {
        expect(r.detail).toMatch(/no answer within the 1.5s connect timeout/);
        expect(r.ms).toBeGreaterThanOrEqual(timeoutSec * 1000);
      }
      expect(rows.find((r) => r.group === 'fleet dark')).toMatchObject({ ok: false, detail: expect.stringMatching(/no host ready/) });
      // one after another they would take at least 6 × 1.5 s = 9 s; at once, one probe's limit
      expect(elapsed).toBeLessThan(timeoutSec * 1000 + 1000 + 3000 + 1000);
    } finally {
      silent.close();
    }
  }, 60_000);

  it('an S3 store, a SLURM cluster and Batch pass; a refused key, a missing key file, a key behind a passphrase and a login node without a controller are named', async () => {
    const [s3, slurm, batch] = await Promise.all([startS3rver(), startSlurm(), startBatchStandin()]);
    try {
      const strangerKey = path.join(tmp, 'stranger_key');
      spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey]);
      const lockedKey = path.join(tmp, 'locked_key');
      spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', lockedKey]);
      batch.projects['my-project'] = { services: APIS.map(([svc]) => svc), granted: [...PERMISSIONS] };
      const secrets = `{ AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/a/versions/1', AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/b/versions/1' }`;
      const root = project(
        'remotes',
        `s3://${s3.bucket}/doctor`,
        // h1 again, with a key it does not know, and with a key file that is not there
        // Patient: this test starts SLURM, s3rver and the Batch stand-in at once, and a probe past
        // its limit would be a skipped row (each of these answers or refuses, never goes silent).
        [
          hostLine('h1', hosts.hosts[0]!, PATIENT_SEC),
          hostLine('stranger', { ...hosts.hosts[0]!, identityFile: strangerKey }, PATIENT_SEC),
          hostLine('keyless', { ...hosts.hosts[0]!, identityFile: path.join(tmp, 'absent_key') }, PATIENT_SEC),
          hostLine('locked', { ...hosts.hosts[0]!, identityFile: lockedKey }, PATIENT_SEC),
        ],
        '{}',
        `  clusters: { hpc: { login: 'local', partition: 'debug' }, far: { login: 'h1' } },\n` +
          `  batch: { cpu: { project: 'my-project', region: 'us-central1', machine_type: 'e2-standard-2', secrets: ${secrets} } },\n`,
      );
      // the store's endpoint under defaults, and its keys in a private .env
      const config = path.join(root, 'cluster_fleet_config.ts');
      writeFileSync(config, readFileSync(config, 'utf8').replace(`store: 's3://${s3.bucket}/doctor' }`, `store: 's3://${s3.bucket}/doctor', s3: { endpoint: '${s3.endpoint}', force_path_style: true } }`));
      writeFileSync(path.join(root, '.env'), `AWS_ACCESS_KEY_ID=${S3RVER_KEYS.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${S3RVER_KEYS.secretAccessKey}\n`, { mode: 0o600 });
      const { apiEndpoint, port, token } = batch.clientOptions;
      const { rows } = await withEnv({ ...slurm.env, SWITCHYARD_BATCH_ENDPOINT: `http://${apiEndpoint}:${port}`, SWITCHYARD_BATCH_TOKEN: token }, () => doctorChecks(root));
      const row = (group: string, name: string) => rows.find((r) => r.group === group && r.name === name);
      expect(row('store', 'reachable')).toMatchObject({ ok: true, detail: `s3://${s3.bucket}/doctor` });
      expect(row('store', 'writable')).toMatchObject({ ok: true });
      expect(row('store', 'free space')).toMatchObject({ ok: 'skip' });
      expect(row('cluster hpc', 'sbatch')).toMatchObject({ ok: true, detail: expect.stringMatching(/sbatch; partitions debug; job arrays of at most 3 units \(MaxArraySize\)$/) });
      // h1 shares this machine's programs but not SLURM_CONF: sbatch is there, no controller answers
      expect(row('cluster far', 'login'), JSON.stringify(row('host h1', 'reachable'))).toMatchObject({ ok: true });
      expect(row('cluster far', 'sbatch')).toMatchObject({ ok: false, detail: expect.stringMatching(/found, but the controller does not answer/), fix: 'check slurmctld and SLURM_CONF on h1 (sinfo there says why)' });
      expect(rows.filter((r) => r.group === 'batch').map((r) => [r.name, r.ok])).toEqual([
        ['credentials', true],
        ['project my-project', true],
        ['Batch API', true],
        ['Secret Manager API', true],
        ['permissions in my-project', true],
      ]);
      expect(row('host stranger', 'ssh key')).toMatchObject({ ok: false, detail: `${strangerKey} refused by the host`, fix: expect.stringMatching(/^add \S+stranger_key\.pub to the host's authorized_keys: ssh-copy-id -i /) });
      expect(row('host stranger', 'reachable')).toMatchObject({ ok: true });
      expect(row('host keyless', 'ssh key')).toMatchObject({ ok: false, detail: expect.stringMatching(/cannot read \S+absent_key \(ENOENT\)/) });
      expect(row('host keyless', 'reachable')).toMatchObject({ ok: 'skip', detail: 'not tried without a usable key' });
      expect(row('host locked', 'ssh key')).toMatchObject({ ok: false, fix: expect.stringMatching(/^use a key without a passphrase/) });
      expect(row('host locked', 'reachable')).toMatchObject({ ok: 'skip' });
      expect(rows.filter((r) => r.ok === false && r.required).map((r) => `${r.group} ${r.name}`)).toEqual(['host stranger ssh key', 'host keyless ssh key', 'host locked ssh key', 'cluster far sbatch']);
    } finally {
      await Promise.all([s3.stop(), slurm.cleanup(), batch.close()]);
    }
  }, 120_000);
});
