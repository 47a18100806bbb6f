// The rented-box route against real sshd hosts in network namespaces: bootstrap, train,
// pull, a killed trainer, a host that disappears, secrets and hostile input.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, LEAK_PY } from '../helpers/leaky-experiment.js';
import { createSandbox, holdExperiment, waitFor, type Sandbox } from '../helpers/sandbox.js';
import { inventoryEntries, startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

// Quotes, $, a backslash, a space and a newline; the distinctive head is what must never show.
const HEAD = 'sy-secret-7f3a9c1e';
const DOTENV = `SY_TEST_TOKEN=\`${HEAD}'q"$HOME \\x y\nsecond line\`\nNOT_DECLARED=other-value\n`;
const SECRET = parseEnv(DOTENV).SY_TEST_TOKEN!;
const KAGGLE_KEY = 'kaggle-key-5d1e0b7a';
let sb: Sandbox;
let hosts: TestHosts;

beforeAll(async () => {
  hosts = await startTestHosts(2, { prefix: 'sye2e' });
  sb = createSandbox();
  const entries = inventoryEntries(hosts);
  const h1 = hosts.hosts[0]!;
  // An address in our own test network where nothing listens: the unreachable host.
  const dead = h1.port === 22 ? { host: h1.host.replace(/\.\d+$/, '.250'), port: 22 } : { host: '127.0.0.1', port: 9 };
  entries.push(`    dead: { host: '${dead.host}', port: ${dead.port}, user: 'root', identity_file: '${h1.identityFile}', known_hosts: '${h1.knownHosts}', connect_timeout: 2 },`);
  // h1 again, with a known_hosts that has never seen its key.
  writeFileSync(path.join(sb.dir, 'stranger_known_hosts'), '');
  entries.push(`    stranger: { host: '${h1.host}', port: ${h1.port}, user: 'root', identity_file: '${h1.identityFile}', known_hosts: '${path.join(sb.dir, 'stranger_known_hosts')}', connect_timeout: 3 },`);
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  writeFileSync(config, readFileSync(config, 'utf8').replace('  hosts: {},', `  hosts: {\n${entries.join('\n')}\n  },`));
  const exps = path.join(sb.dir, 'competitions/penguins/experiments');
  const fast = readFileSync(path.join(exps, 'fast.yaml'), 'utf8');
  writeFileSync(path.join(sb.dir, 'competitions/penguins/leak.py'), LEAK_PY);
  writeFileSync(path.join(exps, 'secret.yaml'), `${fast}setup: [python3, leak.py, SY_TEST_TOKEN]\nsecrets: [SY_TEST_TOKEN]\n`);
  writeFileSync(path.join(exps, 'missing.yaml'), `${fast}secrets: [SY_TEST_TOKEN, SY_ABSENT]\n`);
  writeFileSync(path.join(exps, 'kaggle.yaml'), `${fast}secrets: [KAGGLE_USERNAME, KAGGLE_KEY]\n`);
  // Long enough (~9 s) for its host to be cut off after a few checkpoints.
  writeFileSync(path.join(exps, 'fallback.yaml'), `${fast.replace('EPOCHS: "1600"', 'EPOCHS: "4800"')}backends: [ssh, local]\n`);
  // Runs for an hour unless stopped.
  writeFileSync(path.join(exps, 'long.yaml'), fast.replace('EPOCHS: "1600"', 'EPOCHS: "1000000"'));
  writeFileSync(path.join(sb.dir, '.env'), `${DOTENV}KAGGLE_USERNAME=e2e-user\nKAGGLE_KEY=${KAGGLE_KEY}\n`);
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'test hosts']);
}, 120_000);

afterAll(async () => {
  await hosts?.cleanup();
  sb?.cleanup();
});

const runDir = (id: string) => path.join(sb.dir, '.switchyard/store/runs', id);
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const ownLines = (stderr: string) => stderr.split('\n').filter((l) => l && !/^make(\[\d+\])?: \*\*\*/.test(l));
const all: string[] = []; // every byte the verbs printed, searched for the secret at the end

function make(args: string[]) {
  const r = sb.make(args, { timeoutMs: 180_000 });
  all.push(r.stdout, r.stderr);
  return { ...r, out: r.stdout + r.stderr };
}

/** The run id of a make train on h1, once its first attempt runs there. */
async function remoteAttemptStarted(p: ReturnType<Sandbox['spawnMake']>): Promise<string> {
  const home = hosts.hosts[0]!.home;
  await waitFor(() => {
    const id = runIdIn(p.output());
    return !!id && existsSync(path.join(home, `switchyard/scratch/${id}/attempts/1/events.jsonl`));
  }, 60_000, 'the remote attempt to start');
  return runIdIn(p.output())!;
}

describe('ssh backend', () => {
  it('bootstraps a fresh host, step by step, and pushes only the declared secrets, byte for byte, 0600', () => {
    const r = make(['bootstrap', 'host=h1', 'experiment=penguins/secret']);
    expect(r.code, r.out).toBe(0);
    for (const step of ['ssh', 'tools', 'node', 'secrets', 'sync', 'runner', 'data', 'tmux']) expect(r.stdout).toMatch(new RegExp(`^✓ ${step} `, 'm'));
    expect(r.stdout).toMatch(/✓ data .*data pin [0-9a-f]{8} verified/);
    const home = hosts.hosts[0]!.home;
    const secrets = path.join(home, 'switchyard/secrets.json');
    expect(JSON.parse(readFileSync(secrets, 'utf8'))).toEqual({ SY_TEST_TOKEN: SECRET });
    expect(statSync(secrets).mode & 0o777).toBe(0o600);
  });

  it('bootstrapping again changes nothing', () => {
    const r = make(['bootstrap', 'host=h1', 'experiment=penguins/secret']);
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toMatch(/✓ sync .*: 0 files changed/);
    expect(r.stdout).toMatch(/✓ runner .*\(present\)/);
    expect(r.stdout).toMatch(/✓ node .*already set up/);
  });

  it('an experiment declaring the Kaggle keys gets the CLI\'s kaggle.json, 0600, and the key is never shown', () => {
    const r = make(['bootstrap', 'host=h2', 'experiment=penguins/kaggle']);
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toMatch(/✓ secrets .*secrets\.json \(0600\): KAGGLE_USERNAME, KAGGLE_KEY; switchyard\/kaggle\/kaggle\.json \(0600\)/);
    const file = path.join(hosts.hosts[1]!.home, 'switchyard/kaggle/kaggle.json');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ username: 'e2e-user', key: KAGGLE_KEY });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(r.out).not.toContain(KAGGLE_KEY);
  });

  it('trains there, and the pulled submission equals a local run with the same pins', () => {
    const remote = make(['train', 'experiment=penguins/fast', 'backend=ssh', 'host=h1']);
    expect(remote.code, remote.out).toBe(0);
    const id = runIdIn(remote.out)!;
    const run = JSON.parse(readFileSync(path.join(runDir(id), 'run.json'), 'utf8'));
    expect(run.attempts).toMatchObject([{ backend: 'ssh', state: 'succeeded', handle: { host: 'h1' } }]);
    expect(existsSync(path.join(hosts.hosts[0]!.home, `switchyard/scratch/${id}/attempts/1/stdout.log`))).toBe(true);
    // The host staged the pinned data from its copy of the project, as the laptop does.
    expect(remote.out).toMatch(/switchyard: data pin [0-9a-f]{8} staged read-only in \.switchyard\/data-views\/[0-9a-f]{64}\/data: 2 hard links/);
    expect(existsSync(path.join(hosts.hosts[0]!.home, 'switchyard/repo/.switchyard/data-views', run.pins.data.root, 'data/train.csv'))).toBe(true);
    const logs = make(['logs', `run=${id}`]);
    expect(logs.stdout).toContain('done: 1600 epochs');

    const pulled = make(['pull', `run=${id}`]);
    expect(pulled.code, pulled.out).toBe(0);
    expect(make(['predict', `run=${id}`]).code).toBe(0);
    const local = make(['train', 'experiment=penguins/fast', 'again=1']);
    const ref = runIdIn(local.out)!;
    expect(JSON.parse(readFileSync(path.join(runDir(ref), 'run.json'), 'utf8')).pins.digest).toBe(run.pins.digest);
    expect(make(['predict', `run=${ref}`]).code).toBe(0);
    const submission = (rid: string) => readFileSync(path.join(runDir(rid), 'outputs/submission.csv'));
    expect(submission(id).equals(submission(ref))).toBe(true);
    expect(make(['verify']).code).toBe(0);
  });

  it('a SIGKILLed remote trainer is noticed and the next attempt resumes from its last checkpoint', async () => {
    const home = hosts.hosts[0]!.home;
    const hold = await holdExperiment(sb, { env: hosts.mark('h1') });
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'backend=ssh', 'host=h1', 'seed=21']);
    const committed = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((s) => existsSync(path.join(dir, s, 'manifest.json'))).map(Number) : []);
    // Held still from its start, on a slice at a time: however quick the machine, the kill lands
    // mid-run, once the runner has stored the steps the experiment committed (it may lag).
    const { pid } = await hold.until(async (id) => {
      const stored = () => committed(path.join(home, `switchyard/store/runs/${id}/ckpt`));
      const newest = committed(path.join(home, `switchyard/scratch/${id}/ckpt`)).sort((a, b) => b - a)[0];
      if (newest !== undefined) await waitFor(() => stored().some((s) => s >= newest), 60_000, `step ${newest} in the host store`);
      return stored().length >= 2;
    }, 'two checkpoints in the host store');
    process.kill(pid, 'SIGKILL');
    const code = await new Promise((r) => p.on('close', r));
    all.push(p.output());
    expect(code, p.output()).toBe(0);
    expect(p.output()).toMatch(/attempt 1 preempted: the experiment was killed by SIGKILL; starting attempt 2 on ssh/);
    const run = JSON.parse(readFileSync(path.join(runDir(runIdIn(p.output())!), 'run.json'), 'utf8'));
    expect(run.attempts.map((a: { state: string }) => a.state)).toEqual(['preempted', 'succeeded']);
    expect(run.attempts[1].restored_step).toBeGreaterThan(0);
    expect(p.output()).toContain(`resuming from committed checkpoint step ${run.attempts[1].restored_step}`);
  });

  it('a new make train re-attaches to a remote attempt whose orchestrator died; logs follow it; pull host= brings runs home', async () => {
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'backend=ssh', 'host=h1', 'seed=22']);
    const id = await remoteAttemptStarted(p);
    process.kill(-p.pid!, 'SIGKILL'); // the orchestrator dies; the remote runner does not
    await new Promise((r) => p.on('close', r));
    const follow = sb.spawnMake(['logs', `run=${id}`, 'follow=1']);
    const again = make(['train', 'experiment=penguins/fast', 'backend=ssh', 'host=h1', 'seed=22']);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain(`re-attaching to run ${id}, attempt 1 on ssh`);
    expect(again.out).toContain(`run ${id} succeeded`);
    const run = JSON.parse(readFileSync(path.join(runDir(id), 'run.json'), 'utf8'));
    expect(run.attempts).toHaveLength(1);
    await new Promise((r) => follow.on('close', r));
    expect(follow.output()).toContain('done: 1600 epochs');

    const pulled = make(['pull', 'host=h1']);
    expect(pulled.code, pulled.out).toBe(0);
    expect(pulled.stdout).toContain(`pulled`);
    expect(existsSync(path.join(sb.dir, 'outputs', id, 'outputs/model.json'))).toBe(true);
  });

  it('make stop reaches a remote attempt whose launcher died before it saved the handle, and records it stopped', async () => {
    const p = sb.spawnMake(['train', 'experiment=penguins/long', 'backend=ssh', 'host=h1']);
    const id = await remoteAttemptStarted(p);
    process.kill(-p.pid!, 'SIGKILL');
    await new Promise((r) => p.on('close', r));
    // What a launcher killed between its submit and the save of the handle leaves: the attempt
    // queued on the slot its submit went to, its start in the ledger.
    const file = path.join(runDir(id), 'run.json');
    const record = JSON.parse(readFileSync(file, 'utf8'));
    const handle = record.attempts[0].handle;
    expect(record.attempts[0]).toMatchObject({ n: 1, slot: 'h1', state: 'running' });
    Object.assign(record.attempts[0], { handle: null, state: 'queued' });
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    expect(make(['reindex']).code).toBe(0);

    const stop = make(['stop', `run=${id}`]);
    expect(stop.code, stop.out).toBe(0);
    expect(stop.stdout).toMatch(/attempt 1 cancelled at checkpoint step \d+/);
    const after = JSON.parse(readFileSync(file, 'utf8'));
    expect(after.attempts.map((a: { state: string }) => a.state)).toEqual(['cancelled']);
    expect(after.attempts[0].handle).toEqual(handle);
    expect(hosts.killOn('h1', 'python3 train.py', 'SIGKILL')).toBe(0); // nothing left running
    const starts = readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"attempt.started"') && l.includes(`"run_id":"${id}"`));
    expect(starts).toHaveLength(1);
  });

  it('a host whose sshd dies mid-run is lost within its connect timeout, the run resumes on the next backend from what came home, and make verify passes', async () => {
    expect(make(['bootstrap', 'host=h2']).code).toBe(0);
    const p = sb.spawnMake(['train', 'experiment=penguins/fallback', 'backend=ssh', 'host=h2']);
    const ledger = () => readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8');
    const commits = (id: string) => ledger().split('\n').filter((l) => l.includes('"type":"ckpt.committed"') && l.includes(`"run_id":"${id}"`)).length;
    // Cut the host off once a checkpoint it committed has been copied home and another is in the ledger.
    await waitFor(() => {
      const id = runIdIn(p.output());
      const ckpt = id && path.join(runDir(id), 'ckpt');
      return !!ckpt && existsSync(ckpt) && readdirSync(ckpt).some((step) => existsSync(path.join(ckpt, step, 'manifest.json'))) && commits(id) >= 2;
    }, 90_000, 'checkpoints of the remote attempt, one of them home');
    await hosts.stopSshd('h2');
    try {
      const code = await new Promise((r) => p.on('close', r));
      all.push(p.output());
      expect(code, p.output()).toBe(0);
      expect(p.output()).toMatch(/attempt 1 lost: .*h2.*; starting attempt 2 on local/);
      const id = runIdIn(p.output())!;
      const run = JSON.parse(readFileSync(path.join(runDir(id), 'run.json'), 'utf8'));
      expect(run.attempts.map((a: { backend: string; state: string }) => `${a.backend}:${a.state}`)).toEqual(['ssh:lost', 'local:succeeded']);
      // It resumed from a checkpoint that really came home; the steps that did not are named.
      expect(run.attempts[1].restored_step).toBeGreaterThan(0);
      const entries = ledger().trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.run_id === id);
      for (const e of entries.filter((x) => x.type === 'ckpt.lost')) {
        expect(e).toMatchObject({ host: 'h2', attempt: 1 });
        expect(existsSync(path.join(runDir(id), `ckpt/${e.step}/manifest.json`))).toBe(false);
      }
      // And it ends as an uninterrupted run with the same pins does.
      const ref = make(['train', 'experiment=penguins/fallback', 'backend=local', 'again=1']);
      expect(ref.code, ref.out).toBe(0);
      const refId = runIdIn(ref.out)!;
      expect(readFileSync(path.join(runDir(id), 'outputs/model.json')).equals(readFileSync(path.join(runDir(refId), 'outputs/model.json')))).toBe(true);
      const verify = make(['verify']);
      expect(verify.code, verify.out).toBe(0);
    } finally {
      await hosts.startSshd('h2');
    }
  });

  it('rejects hostile host names before connecting, and names an unreachable host within its timeout', () => {
    for (const bad of ['a;b', '$$(id)', 'a b', '../h1']) {
      const r = make(['train', 'experiment=penguins/fast', 'backend=ssh', `host=${bad}`]);
      expect(r.code).not.toBe(0);
      expect(ownLines(r.stderr)).toEqual([expect.stringMatching(/^switchyard: host: unknown host .*; add it under hosts in cluster_fleet_config\.ts$/)]);
    }
    const t0 = Date.now();
    const dead = make(['bootstrap', 'host=dead']);
    expect(dead.code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(ownLines(dead.stderr).at(-1)).toMatch(/^switchyard: ssh dead \(root@[\d.]+:\d+\): /);
    const table = make(['hosts']).stdout;
    expect(table).toMatch(/^h1 .* up \d+ ms/m);
    expect(table).toMatch(/^dead .* down: /m);
  });

  it('a host whose key is unknown is refused before a run is created: no run row, nothing in the store', () => {
    const dir = path.join(sb.dir, '.switchyard/store/runs');
    const runs = () => (existsSync(dir) ? readdirSync(dir).sort() : []);
    const before = { runs: runs(), status: make(['status']).stdout };
    const r = make(['train', 'experiment=penguins/fast', 'backend=ssh', 'host=stranger', 'seed=23']);
    expect(r.code).not.toBe(0);
    expect(ownLines(r.stderr)).toEqual([expect.stringMatching(/^switchyard: ssh stranger \(.*\): host key is not in \S*stranger_known_hosts /)]);
    expect(runs()).toEqual(before.runs);
    expect(make(['status']).stdout).toBe(before.status);
  });

  it('a declared secret missing from .env stops make train in one line before any run, as on the laptop', () => {
    const runs = () => (existsSync(path.join(sb.dir, '.switchyard/store/runs')) ? readdirSync(path.join(sb.dir, '.switchyard/store/runs')) : []);
    const before = runs();
    const r = make(['train', 'experiment=penguins/missing', 'backend=ssh', 'host=h1']);
    expect(r.code).not.toBe(0);
    expect(ownLines(r.stderr)).toEqual([
      'switchyard: competitions/penguins/experiments/missing.yaml: secrets: SY_ABSENT is declared but not in .env; add SY_ABSENT=<value> to .env, or remove it from secrets:',
    ]);
    expect(runs()).toEqual(before);
  });

  it('an experiment on the host sees its secret intact and shows it nowhere: logs, metrics, records, ledger, any output', () => {
    const p = make(['train', 'experiment=penguins/secret', 'backend=ssh', 'host=h1']);
    expect(p.code, p.out).toBe(0);
    const id = runIdIn(p.out)!;
    const logs = make(['logs', `run=${id}`]);
    expect(logs.stdout).toMatch(/^\[redacted SY_TEST_TOKEN\]\n/);
    expect(logs.stdout).toContain(`secret sha256 ${createHash('sha256').update(SECRET).digest('hex')}\n`);
    expect(make(['logs', `run=${id}`, 'stream=stderr']).stdout).toContain('stderr: [redacted SY_TEST_TOKEN]\n');
    expect(readFileSync(path.join(runDir(id), 'attempts/1/metrics.jsonl'), 'utf8')).toMatch(/^\{"step": 0, "note": "\[redacted SY_TEST_TOKEN\]"\}\n/);
    const home = hosts.hosts[0]!.home;
    const files = [...filesUnder(path.join(sb.dir, '.switchyard')), ...filesUnder(path.join(home, 'switchyard/scratch')), ...filesUnder(path.join(home, 'switchyard/store'))];
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) expect(readFileSync(f).includes(HEAD), f).toBe(false);
    for (const text of all) expect(text).not.toContain(HEAD);
  });
});
