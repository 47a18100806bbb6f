// The fleet route against three real sshd hosts in network namespaces: a 6-shard kNN search
// on 3 hosts merges to the same bytes as the unsharded search on the laptop; a host whose sshd
// dies mid-search has its shards finish elsewhere; make merge refuses a missing, duplicated,
// stale or truncated shard, naming it.
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, shardCommits, waitFor, type Sandbox } from '../helpers/sandbox.js';
import { inventoryEntries, startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

let sb: Sandbox;
let hosts: TestHosts;

beforeAll(async () => {
  hosts = await startTestHosts(3, { prefix: 'syfleet' });
  sb = createSandbox();
  const entries = inventoryEntries(hosts);
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  writeFileSync(
    config,
    readFileSync(config, 'utf8')
      .replace('  hosts: {},', `  hosts: {\n${entries.join('\n')}\n  },`)
      .replace('  fleets: {},', `  fleets: {\n    lab: { hosts: ['h1', 'h2', 'h3'], lost_after_sec: 2 },\n    fresh: { hosts: ['h2', 'h3'], root: 'sy-fresh', session_prefix: 'fr', output_dir: 'sy-results' },\n    steady: { hosts: ['h1', 'h2', 'h3'], lost_after_sec: 60 },\n  },`),
  );
  const exps = path.join(sb.dir, 'competitions/knn/experiments');
  const base = readFileSync(path.join(sb.dir, 'competitions/knn/experiment.yaml'), 'utf8');
  // Slow enough to lose a host in the middle: a pause after each of the 5 units of a shard.
  const slow = (pause: number) => base.replace('count: 1', 'count: 6').replace('  checkpoint_every_sec: 1', `  checkpoint_every_sec: 0.5\n  env: { KNN_UNIT_PAUSE_SEC: "${pause}" }`);
  writeFileSync(path.join(exps, 'slow.yaml'), slow(1));
  writeFileSync(path.join(exps, 'slower.yaml'), slow(2));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'test fleet']);
  const r = sb.make(['bootstrap', 'fleet=lab'], { timeoutMs: 300_000 });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout.match(/^h\d is ready/gm)).toEqual(['h1 is ready', 'h2 is ready', 'h3 is ready']);
}, 600_000);

afterAll(async () => {
  await hosts?.cleanup();
  sb?.cleanup();
});

const store = (rel: string) => path.join(sb.dir, '.switchyard/store', rel);
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];

function make(args: string[]) {
  const r = sb.make(args, { timeoutMs: 300_000 });
  return { ...r, out: r.stdout + r.stderr };
}

/** The records of the unsharded search run on the laptop: its one shard file minus the header. */
let cachedReference: string | undefined;
function reference(): string {
  if (cachedReference !== undefined) return cachedReference;
  const r = make(['train', 'experiment=knn']);
  expect(r.code, r.out).toBe(0);
  const id = runIdIn(r.out)!;
  cachedReference = readFileSync(store(`runs/${id}/outputs/shard-0-of-1.jsonl`), 'utf8').split('\n').slice(1).join('\n');
  return cachedReference;
}

describe('fleet search', () => {
  let sixId: string;

  it('6 shards on 3 hosts: placement printed, merged bytes equal the unsharded local search', () => {
    reference();
    const r = make(['fleet-search', 'experiment=knn/fleet', 'fleet=lab']);
    expect(r.code, r.out).toBe(0);
    sixId = runIdIn(r.out)!;
    expect(r.out).toMatch(/fleet lab: 6 of 6 shards on 3 hosts, one at a time per host/);
    expect(r.out).toMatch(/^ {2}h1: shards 0, 3$/m);
    expect(r.out).toMatch(/^ {2}h2: shards 1, 4$/m);
    expect(r.out).toMatch(/^ {2}h3: shards 2, 5$/m);
    // Bootstrapped hosts: the project goes by rsync's delta, the runner is there already.
    for (const h of ['h1', 'h2', 'h3']) expect(r.out).toMatch(new RegExp(`✓ ${h}: project synced \\(\\d+ files? changed, [^)]*\\), runner present`));
    expect(r.out).toMatch(/merged 6 shards \(concat\) into .*merged\.jsonl: 30 records/);
    expect(r.out).toContain('moved: none');

    const merged = readFileSync(store(`runs/${sixId}/outputs/merged.jsonl`), 'utf8');
    expect(merged).toBe(reference());
    const run = JSON.parse(readFileSync(store(`runs/${sixId}/run.json`), 'utf8'));
    expect(run.shards.map((s: { attempts: { handle: { host: string } }[] }) => s.attempts[0]!.handle.host)).toEqual(['h1', 'h2', 'h3', 'h1', 'h2', 'h3']);
    // Each shard ran in its own tmux session and scratch folder on its host.
    expect(existsSync(path.join(hosts.hosts[1]!.home, `switchyard/scratch/${sixId}/shards/4/attempts/1/status.json`))).toBe(true);
    const report = JSON.parse(readFileSync(store(`runs/${sixId}/merge-report.json`), 'utf8'));
    expect(report.shards.map((s: { records: number }) => s.records)).toEqual([5, 5, 5, 5, 5, 5]);
    const ledger = readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8');
    expect(ledger).toMatch(new RegExp(`"type":"merge.completed","run_id":"${sixId}"`));

    const status = make(['fleet-status', `run=${sixId}`]);
    expect(status.code, status.out).toBe(0);
    expect(status.stdout).toMatch(/succeeded, 6 of 6 shards done/);
    expect(make(['status']).stdout).toMatch(new RegExp(`${sixId}\\s+knn/fleet\\s+succeeded \\(6/6 shards\\)\\s+6\\s+fleet lab`));
    const logs = make(['logs', `run=${sixId}`, 'shard=2', 'stream=stderr']);
    expect(logs.stdout).toContain('search: shard 2 of 6: keys [10, 15)');
    expect(make(['logs', `run=${sixId}`]).stderr).toContain(`logs: run ${sixId} is a fleet search; add shard=<0-5>`);
    const fleetPull = make(['fleet-pull', `run=${sixId}`]);
    expect(fleetPull.code, fleetPull.out).toBe(0);
    expect(fleetPull.stdout).toMatch(/✓ shard 5 \(h3, attempt 1, succeeded\)/);
    const pulled = make(['pull', `run=${sixId}`]);
    expect(pulled.code, pulled.out).toBe(0);
    expect(readFileSync(path.join(sb.dir, 'outputs', sixId, 'outputs/merged.jsonl'), 'utf8')).toBe(reference());
    expect(readFileSync(path.join(sb.dir, 'outputs', sixId, 'shards/4/attempts/1/stderr.log'), 'utf8')).toContain('search: shard 4 of 6');
    expect(make(['verify']).code).toBe(0);
  });

  it('a fleet with its own root and output folder: not ready names the fix; once it has a runtime, the empty project copies are filled and the search runs there', async () => {
    const refused = make(['fleet-search', 'experiment=knn/fleet', 'fleet=fresh', 'seed=7']);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/✗ h2: ssh h2: not bootstrapped \(no sy-fresh\/runtime\/node\); run make bootstrap fleet=fresh/);
    expect(refused.stderr).toMatch(/fleet fresh: no host could be prepared/);
    // A runtime but no project yet: the first push fills each empty copy (one tar of the project, else rsync).
    for (const h of ['h2', 'h3']) await hosts.execOn(h, ['sh', '-c', 'mkdir -p sy-fresh/runtime && ln -sf "$(command -v node)" sy-fresh/runtime/node']);
    const r = make(['fleet-search', 'experiment=knn/fleet', 'fleet=fresh', 'seed=7']);
    expect(r.out).toMatch(/^run \S+ on /m); // the refusal left no run behind to resume
    expect(r.out).not.toMatch(/resuming run /);
    for (const h of ['h2', 'h3']) expect(r.out).toMatch(new RegExp(`✓ ${h}: project unpacked \\(\\d+ files?, [^)]*\\), runner sent`));
    expect(r.code, r.out).toBe(0);
    const id = runIdIn(r.out)!;
    expect(readFileSync(store(`runs/${id}/outputs/merged.jsonl`), 'utf8')).toBe(reference());
    for (const h of hosts.hosts.slice(1)) {
      expect(existsSync(path.join(h.home, 'sy-fresh/repo/competitions/knn/search.py'))).toBe(true);
      expect(existsSync(path.join(h.home, 'sy-fresh/repo/.git'))).toBe(false); // the excludes hold in the tar too
    }
    const run = JSON.parse(readFileSync(store(`runs/${id}/run.json`), 'utf8'));
    expect(run.shards[1].attempts[0].handle.session).toBe(`fr-${id}-s1-1`);
    // Each shard wrote its outputs into the fleet's output_dir on its host (relative to the login directory), not its scratch.
    const shardOut = (i: number) => path.join(run.shards[i].attempts[0].handle.host === 'h2' ? hosts.hosts[1]!.home : hosts.hosts[2]!.home, `sy-results/${id}/shards/${i}/shard-${i}-of-6.jsonl`);
    for (const i of [0, 1, 5]) expect(readFileSync(shardOut(i), 'utf8')).toBe(readFileSync(store(`runs/${id}/shards/${i}/outputs/shard-${i}-of-6.jsonl`), 'utf8'));
    expect(existsSync(path.join(hosts.hosts[1]!.home, `sy-fresh/scratch/${id}/shards/0/output`))).toBe(false);
  });

  it('make merge names each bad shard and the command that fixes it', () => {
    const outputs = (i: number) => store(`runs/${sixId}/shards/${i}/outputs`);
    const file = (i: number) => path.join(outputs(i), `shard-${i}-of-6.jsonl`);
    const refused = (pattern: RegExp) => {
      const r = make(['merge', `run=${sixId}`]);
      expect(r.code, r.out).not.toBe(0);
      const line = r.stderr.split('\n').find((l) => l && !l.startsWith('make'))!;
      expect(line).toMatch(pattern);
      expect(r.out).not.toMatch(/\n\s+at /); // no stack trace
    };

    renameSync(file(5), `${file(5)}.away`);
    refused(new RegExp(`shard 5 of 6 is missing; re-run it with make retry run=${sixId} shard=5`));
    renameSync(`${file(5)}.away`, file(5));

    copyFileSync(file(1), path.join(outputs(2), 'shard-1-of-6.jsonl'));
    refused(/shard 1 appears twice \(.*shards\/1\/outputs\/shard-1-of-6\.jsonl, .*shards\/2\/outputs\/shard-1-of-6\.jsonl\)/);
    rmSync(path.join(outputs(2), 'shard-1-of-6.jsonl'));

    const original = readFileSync(file(3), 'utf8');
    const [header, ...rest] = original.split('\n');
    const stale = { ...JSON.parse(header!), pins_digest: 'deadbeef'.repeat(8) };
    writeFileSync(file(3), [JSON.stringify(stale), ...rest].join('\n'));
    refused(new RegExp(`shard 3 has pins digest deadbeef, the run has [0-9a-f]{8} \\(stale: from another run\\); re-run it with make retry run=${sixId} shard=3`));
    writeFileSync(file(3), original);

    const whole = readFileSync(file(4));
    writeFileSync(file(4), whole.subarray(0, Math.floor(whole.length / 2)));
    refused(/shard 4 .*truncated.*make retry run=.* shard=4/);
    writeFileSync(file(4), whole);

    // Outputs whose storing was cut off before the runner's outputs manifest: not trusted.
    const manifest = store(`runs/${sixId}/shards/0/outputs.manifest.json`);
    renameSync(manifest, `${manifest}.away`);
    refused(new RegExp(`shard 0 of 6 \\(.*shards/0/outputs/shard-0-of-6\\.jsonl\\) is not in its runner's outputs manifest: .*make retry run=${sixId} shard=0`));
    renameSync(`${manifest}.away`, manifest);

    const again = make(['merge', `run=${sixId}`]);
    expect(again.code, again.out).toBe(0);
    expect(readFileSync(store(`runs/${sixId}/outputs/merged.jsonl`), 'utf8')).toBe(reference());
  });

  it('a detached search is seen and stopped from another shell, resumed by fleet-search, and fleet-retry re-runs a shard elsewhere', async () => {
    const launch = ['fleet-search', 'experiment=knn/slower', 'fleet=lab'];
    /** Starts the launcher, waits for `ready` in its output, then Ctrl-C in its terminal. */
    const launchAndDetach = async (ready: (out: string) => boolean, what: string, whileAttached?: () => void) => {
      const p = sb.spawnMake(launch);
      await waitFor(() => ready(p.output()), 120_000, what);
      whileAttached?.();
      process.kill(-p.pid!, 'SIGINT');
      await new Promise((r) => p.on('close', r));
      expect(p.output()).toContain('SIGINT: detaching; the shards keep running on their hosts');
      return p.output();
    };
    // While one launcher follows the shards, a second one for the same run is refused: only one records them.
    const refusedSecond = () => {
      const r = make(launch);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/run \S+ is already followed by a launcher in another shell \(pid \d+\); make status run=\S+ looks at it/);
    };
    const first = await launchAndDetach((out) => (out.match(/shard \d: starting from scratch/g) ?? []).length >= 3, 'three shards started', refusedSecond);
    const id = runIdIn(first)!;

    const status = make(['fleet-status', `run=${id}`]);
    expect(status.code, status.out).toBe(0);
    expect(status.stdout).toMatch(/: running, 0 of 6 shards done/);
    expect(status.stdout.split('\n').filter((l) => /^\d\s+h\d\s+running\s/.test(l))).toHaveLength(3);

    // A new launcher finds the running shards and follows them instead of starting them again.
    const second = await launchAndDetach((out) => out.includes('shard 2 already running'), 'the launcher to re-attach');
    expect(second).toMatch(/h1: shard 0 already running \(attempt 1\), re-attaching/);

    const stop = make(['fleet-stop', `run=${id}`]);
    expect(stop.code, stop.out).toBe(0);
    expect(stop.stdout).toContain('asked shards 0, 1, 2 to checkpoint and stop');
    let run = JSON.parse(readFileSync(store(`runs/${id}/run.json`), 'utf8'));
    expect(run.shards.slice(0, 3).map((s: { attempts: { state: string }[] }) => s.attempts[0]!.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(run.shards[0].attempts[0].last_step).toBeGreaterThan(0); // checkpointed on the way out

    const resumed = make(launch);
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain(`resuming run ${id}`);
    run = JSON.parse(readFileSync(store(`runs/${id}/run.json`), 'utf8'));
    expect(run.shards[0].attempts[1].restored_step).toBe(run.shards[0].attempts[0].last_step);
    expect(readFileSync(store(`runs/${id}/outputs/merged.jsonl`), 'utf8')).toBe(reference());

    const retry = make(['fleet-retry', `run=${id}`, 'shard=2']);
    expect(retry.code, retry.out).toBe(0);
    expect(retry.out).toMatch(/fleet lab: 1 of 6 shards on 1 host,/);
    run = JSON.parse(readFileSync(store(`runs/${id}/run.json`), 'utf8'));
    expect(run.shards[2].attempts.at(-1).handle.host).not.toBe('h3');
    expect(readFileSync(store(`runs/${id}/outputs/merged.jsonl`), 'utf8')).toBe(reference());
    expect(make(['verify']).code).toBe(0);
  }, 300_000);

  it("a host whose sshd dies mid-search: its shards move, resume and finish elsewhere; the merge is complete and says what moved", async () => {
    const p = sb.spawnMake(['fleet-search', 'experiment=knn/slow', 'fleet=lab']);
    // A checkpoint of shard 1 (on h2) committed there and copied home: what the move resumes from.
    const mirroredFromH2 = () => shardCommits(sb, runIdIn(p.output()), 1).some((c) => existsSync(store(c.manifest)));
    await waitFor(mirroredFromH2, 120_000, 'a checkpoint of shard 1 from h2');
    await hosts.stopSshd('h2');
    const code = await new Promise((r) => p.on('close', r));
    const out = p.output();
    expect(code, out).toBe(0);
    const id = runIdIn(out)!;
    expect(out).toMatch(/host h2 lost: /);
    expect(out).toMatch(/shard 1 moved from h2 to h[13] \(resumes from checkpoint step [1-9]\d*\)/);
    expect(out).toMatch(/shard 4 moved from h2 to h[13]/);
    expect(out).toMatch(/moved: shard 1 h2→h[13], shard 4 h2→h[13]/);

    const run = JSON.parse(readFileSync(store(`runs/${id}/run.json`), 'utf8'));
    expect(run.shards[1].moved_from).toEqual(['h2']);
    expect(run.shards[1].attempts.at(-1).restored_step).toBeGreaterThan(0);
    const report = JSON.parse(readFileSync(store(`runs/${id}/merge-report.json`), 'utf8'));
    expect(report.shards.filter((s: { moved_from: string[] }) => s.moved_from.length).map((s: { index: number }) => s.index)).toEqual([1, 4]);
    const merged = readFileSync(store(`runs/${id}/outputs/merged.jsonl`), 'utf8');
    expect(merged).toBe(reference());
    const keys = merged.trimEnd().split('\n').map((l) => JSON.parse(l).key);
    expect(keys).toEqual([...Array(30).keys()]); // none missing, none twice
    const verify = make(['verify']);
    expect(verify.code, verify.out).toBe(0);
    await hosts.startSshd('h2');
  }, 300_000);

  it('a host that stops answering for less than lost_after_sec: its shards stay, keep running and are not started twice', async () => {
    const p = sb.spawnMake(['fleet-search', 'experiment=knn/slow', 'fleet=steady', 'seed=11']);
    await waitFor(() => shardCommits(sb, runIdIn(p.output()), 1).length > 0, 120_000, 'a checkpoint of shard 1 on h2');
    await hosts.stopSshd('h2');
    await new Promise((r) => setTimeout(r, 4000)); // a few ticks of failed polls
    await hosts.startSshd('h2');
    const code = await new Promise((r) => p.on('close', r));
    const out = p.output();
    expect(code, out).toBe(0);
    expect(out).not.toMatch(/host h2 lost|moved from/);
    const id = runIdIn(out)!;
    const run = JSON.parse(readFileSync(store(`runs/${id}/run.json`), 'utf8'));
    // One attempt each, on its planned host: nothing was declared lost, nothing started again.
    expect(run.shards.map((s: { attempts: { handle: { host: string } }[] }) => s.attempts.map((a) => a.handle.host))).toEqual([['h1'], ['h2'], ['h3'], ['h1'], ['h2'], ['h3']]);
    expect(readFileSync(store(`runs/${id}/outputs/merged.jsonl`), 'utf8')).toBe(reference());
  }, 300_000);
});
