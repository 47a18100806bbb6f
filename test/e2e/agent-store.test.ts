// The agent with its home in the store, on another machine: a laptop (a sandbox) and an always-on
// host (a clone of it at the same commit, its agent in a UTS namespace named `always-on`) share
// an S3 store (s3rver) and a real sshd host h1 where the runs' attempts run. A run handed over
// with detach=1 is carried by the host's agent and stopped from the laptop through the store;
// a laptop whose make train is stopped (SIGSTOP, a closed lid) has its run taken over once its
// heartbeat is stale, and on waking leaves the run to the agent: one attempt, never two.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunJson, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { runIdIn } from '../helpers/agent.js';
import { REPO, createSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';
import { s3rverObjectPath, startS3rver, useS3rverStore, type S3rver } from '../helpers/s3rver.js';
import { inventoryEntries, startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

const PREFIX = 'team';
let hosts: TestHosts;
let s3: S3rver;
let laptop: Sandbox;
let alwaysOn: string;
let agent: ReturnType<typeof startAgentThere> | null = null;

/** `make agent` in the always-on clone, in a UTS namespace of its own: another machine's host name. */
function startAgentThere() {
  const child = spawn('unshare', ['--uts', 'sh', '-c', 'hostname always-on && exec make -s agent tick_ms=200'], { cwd: alwaysOn, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return Object.assign(child, { output: () => out });
}

async function startAgent() {
  const p = startAgentThere();
  await waitFor(() => /agent: pid \d+ on always-on/.test(p.output()) || p.exitCode !== null, 60_000, 'the agent on always-on to start');
  if (p.exitCode !== null) throw new Error(`make agent exited ${p.exitCode}: ${p.output()}`);
  return p;
}

async function stopAgent(): Promise<void> {
  const p = agent;
  agent = null;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const closed = new Promise((r) => p.on('close', r));
  process.kill(-p.pid!, 'SIGTERM');
  await closed;
}

/** The run's record in the store, as any machine reads it. */
function storedRun(id: string): RunRecord | null {
  const file = s3rverObjectPath(s3, `${PREFIX}/runs/${id}/run.json`);
  if (!existsSync(file)) return null;
  try {
    return parseRunJson(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** What is wanted of the run, as the agent's home in the store says. */
function desiredInStore(id: string): { closed?: { state: string }; follower?: object } | null {
  const file = s3rverObjectPath(s3, `${PREFIX}/agent/runs/${id}.json`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

const commits = (id: string) => {
  const ledger = path.join(laptop.dir, '.switchyard/ledger.jsonl');
  return existsSync(ledger) ? readFileSync(ledger, 'utf8').split('\n').filter((l) => l.includes('"ckpt.committed"') && l.includes(id)).length : 0;
};

beforeAll(async () => {
  hosts = await startTestHosts(1, { prefix: 'syhome' });
  s3 = await startS3rver('switchyard-home', hosts.gateway); // where h1's runner reaches it too
  laptop = createSandbox();
  useS3rverStore(laptop.dir, s3, PREFIX);
  const config = path.join(laptop.dir, 'cluster_fleet_config.ts');
  const text = readFileSync(config, 'utf8')
    .replace('  hosts: {},', `  hosts: {\n${inventoryEntries(hosts).join('\n')}\n  },`)
    .replace("  // agent: { home: 'store' },", "  agent: { home: 'store', stale_after_sec: 5 },");
  expect(text).toContain("agent: { home: 'store'");
  writeFileSync(config, text);
  const exps = path.join(laptop.dir, 'competitions/penguins/experiments');
  const fast = readFileSync(path.join(exps, 'fast.yaml'), 'utf8');
  writeFileSync(path.join(exps, 'long.yaml'), `${fast.replace('EPOCHS: "1600"', 'EPOCHS: "9600"')}backends: [ssh]\n`);
  laptop.git(['add', '-A']);
  laptop.git(['commit', '-qm', 'a store shared with an always-on host']);
  const boot = laptop.make(['bootstrap', 'host=h1'], { timeoutMs: 120_000 });
  expect(boot.code, boot.stdout + boot.stderr).toBe(0);

  // The always-on host: a clone at the same commit, with the same .env and a build of its own.
  alwaysOn = path.join(mkdtempSync(path.join(os.tmpdir(), 'switchyard-always-on-')), 'repo');
  laptop.git(['clone', '-q', laptop.dir, alwaysOn]);
  if (!existsSync(path.join(alwaysOn, 'node_modules'))) symlinkSync(path.join(REPO, 'node_modules'), path.join(alwaysOn, 'node_modules'));
  utimesSync(path.join(alwaysOn, 'package-lock.json'), new Date(0), new Date(0));
  cpSync(path.join(laptop.dir, '.env'), path.join(alwaysOn, '.env'));
  cpSync(path.join(laptop.dir, 'dist'), path.join(alwaysOn, 'dist'), { recursive: true });
}, 240_000);

afterAll(async () => {
  await stopAgent();
  if (alwaysOn) rmSync(path.dirname(alwaysOn), { recursive: true, force: true });
  laptop?.cleanup();
  await Promise.all([hosts?.cleanup(), s3?.stop()]);
});

describe('an agent whose home is the store, on another machine', () => {
  it('holds the store alone, carries a run handed over with detach=1, and stops it when the laptop asks', async () => {
    agent = await startAgent();
    const status = laptop.make(['agent-status']);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toMatch(/agent: running since .*\(pid \d+ on always-on\)/);
    const second = laptop.make(['agent']);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/pid \d+ on always-on.*one agent per store/);

    // An ssh run with a live agent elsewhere is handed over even without detach=1. Until its
    // attempt is submitted and recorded, the shell names itself the run's follower, so the agent
    // does not take the run up without the attempt (it would then never stop it).
    const train = laptop.spawnMake(['train', 'experiment=penguins/long', 'backend=ssh', 'host=h1', 'seed=1']);
    const code = new Promise<number | null>((r) => train.on('close', r));
    const followed: boolean[] = [];
    await waitFor(
      () => {
        const seen = runIdIn(train.output());
        const wanted = seen ? desiredInStore(seen) : null;
        if (wanted) followed.push(!!wanted.follower);
        return train.exitCode !== null || train.signalCode !== null;
      },
      120_000,
      () => `make train to hand the run over (it printed: ${train.output()})`,
    );
    const exit = await code;
    const out = train.output();
    expect(exit, out).toBe(0);
    expect(out).toMatch(/submitted; the agent \(pid \d+ on always-on\) carries it/);
    expect(followed, 'the run named no follower while make train submitted it').toContain(true);
    const id = runIdIn(out)!;
    await waitFor(() => agent!.output().includes(`agent: driving ${id}`), 60_000, `the agent to drive it (its log: ${agent!.output()})`);

    const stop = laptop.make(['stop', `run=${id}`], { timeoutMs: 120_000 });
    expect(stop.code, `${stop.stdout}${stop.stderr}\nthe agent's log:\n${agent.output()}`).toBe(0);
    expect(stop.stdout, agent.output()).toMatch(/the agent \(pid \d+ on always-on\): asked its live attempts to checkpoint and stop/);
    await waitFor(() => ['cancelled', 'preempted'].includes(storedRun(id)?.units[0]?.attempts.at(-1)?.state ?? ''), 60_000, 'the run to stop');
    expect(storedRun(id)!.units[0]!.attempts).toHaveLength(1);
    const shown = laptop.make(['status', `run=${id}`]);
    expect(shown.stdout).toMatch(/wanted: closed \(cancelled: make stop\)/);
  }, 240_000);

  it('takes over a run whose laptop went silent; the laptop, woken, leaves it to the agent', async () => {
    await stopAgent();
    const train = laptop.spawnMake(['train', 'experiment=penguins/long', 'backend=ssh', 'host=h1', 'seed=2']);
    await waitFor(() => !!runIdIn(train.output()) && commits(runIdIn(train.output())!) >= 1, 120_000, `a checkpoint from the laptop's run (${train.output()})`);
    const id = runIdIn(train.output())!;
    agent = await startAgent();
    process.kill(-train.pid!, 'SIGSTOP'); // the lid closes: make train and its heartbeat stop
    await waitFor(() => agent!.output().includes(`agent: ${id}: its shell`), 60_000, `the agent to take the run over (its log: ${agent!.output()})`);
    expect(agent.output()).toMatch(new RegExp(`agent: ${id}: its shell \\(pid \\d+ on [^)]+\\) silent for \\d+s; carrying it from here`));
    // The agent saves the run's record, then closes the desired run: the laptop wakes after both.
    await waitFor(() => desiredInStore(id)?.closed?.state === 'succeeded', 120_000, () => `the agent to finish it (its log: ${agent!.output()})`);
    expect(storedRun(id)?.units[0]?.attempts.at(-1)?.state).toBe('succeeded');

    const closed = new Promise<number | null>((r) => train.on('close', r));
    process.kill(-train.pid!, 'SIGCONT');
    expect(await closed, train.output()).toBe(0);
    expect(train.output()).toMatch(new RegExp(`run ${id}: while this shell was silent, another process took it over, and it has ended: succeeded`));
    // The attempt the laptop started was followed to its end, never run a second time.
    const attempts = storedRun(id)!.units[0]!.attempts;
    expect(attempts.map((a) => [a.n, a.state])).toEqual([[1, 'succeeded']]);
    let shown = '';
    await waitFor(() => /wanted: closed \(succeeded\)/.test((shown = laptop.make(['status', `run=${id}`]).stdout)), 30_000, () => `make status to show the run closed (it printed: ${shown}; the agent's log: ${agent!.output()})`);
  }, 300_000);

  it('carries a run only from a checkout that pins it as recorded, and never an attempt on the laptop itself', async () => {
    agent ??= await startAgent();
    const git = (args: string[]) => execFileSync('git', args, { cwd: alwaysOn, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
    writeFileSync(path.join(alwaysOn, 'competitions/penguins/NOTES.md'), 'edited on the always-on host only\n');
    git(['commit', '-qam', 'a commit the laptop does not have']);
    const train = laptop.make(['train', 'experiment=penguins/long', 'backend=ssh', 'host=h1', 'seed=3'], { timeoutMs: 120_000 });
    expect(train.code, train.stdout + train.stderr).toBe(0);
    const id = runIdIn(train.stdout + train.stderr)!;
    await waitFor(() => agent!.output().includes(`agent: ${id}: this checkout does not pin it as recorded (code`), 60_000, `the agent to refuse it (its log: ${agent!.output()})`);
    git(['reset', '-q', '--hard', 'HEAD~1']);
    await waitFor(() => storedRun(id)?.units[0]?.attempts.at(-1)?.state === 'succeeded', 120_000, `the agent to carry it once its checkout matches (its log: ${agent!.output()})`);
    expect(storedRun(id)!.units[0]!.attempts).toHaveLength(1);

    // The laptop's own backend: an agent elsewhere cannot follow it, so make train does.
    const local = laptop.make(['train', 'experiment=penguins/fast', 'seed=5'], { timeoutMs: 120_000 });
    const out = local.stdout + local.stderr;
    expect(local.code, out).toBe(0);
    expect(out).not.toContain('carries it');
    expect(storedRun(runIdIn(out)!)!.units[0]!.attempts.map((a) => a.state)).toEqual(['succeeded']);
    expect(agent.output()).not.toContain(runIdIn(out)!);

    // Each machine's ledger vouches for what it recorded of these runs, against the one store.
    for (const [where, dir] of [['laptop', laptop.dir], ['always-on', alwaysOn]]) {
      const verify = spawnSync('make', ['-s', 'verify'], { cwd: dir, encoding: 'utf8' });
      expect(verify.status, `${where}: ${verify.stdout}${verify.stderr}`).toBe(0);
    }
  }, 300_000);
});
