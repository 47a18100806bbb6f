// SshBackend's submitMany and pollMany against a real sshd host with the real runner: submitting is
// idempotent per attempt, a new attempt of a unit is refused while an earlier one still runs
// there (two runners would share its scratch and checkpoints), and a poll the host does not
// answer says so instead of reporting the runner gone. A followed log fails with why when the
// host refuses it, and ends, its tail on the host with it, when its signal aborts. And
// prepareHost fills an empty copy of the project from one tar, the same tree rsync makes.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handle, PollResult } from '../../scripts/lib/backends/backend.js';
import { SshBackend, type SshBackendOptions } from '../../scripts/lib/backends/ssh.js';
import { RepoPacks } from '../../scripts/lib/pack/repo-tar.js';
import { prepareHost } from '../../scripts/lib/remote/prepare-host.js';
import { RemoteHost } from '../../scripts/lib/remote/remote-host.js';
import { TERMINAL } from '../../scripts/lib/runs/run-record.js';
import { SshPool } from '../../scripts/lib/ssh/pool.js';
import type { SshTarget } from '../../scripts/lib/ssh/target.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { RUNNER, startRunnerHost, type RunnerHost } from '../helpers/runner-host.js';
import type { TestHosts } from '../helpers/ssh-hosts.js';
import { waitFor } from '../helpers/sandbox.js';

let rig: RunnerHost;
let hosts: TestHosts;
let tmp: string;
let pool: SshPool;
let backend: SshBackend;
let target: SshTarget;

beforeAll(async () => {
  pool = new SshPool();
  rig = await startRunnerHost('sysub', pool);
  ({ hosts, tmp, target } = rig);
  const host = rig.over(pool);
  backend = new SshBackend(rig.backendOptions(async () => host));
}, 120_000);

const backendOptions = (): SshBackendOptions => rig.backendOptions(async () => rig.over(pool));

afterAll(async () => {
  await pool?.close();
  await rig?.cleanup();
});

const spec = (attempt: number) =>
  testAttemptSpec({
    run_id: 'guard-20261126T0000-0badc0de',
    unit_id: 'guard-20261126T0000-0badc0de/shards/2',
    attempt,
    command: ['sleep', '60'],
    cwd: '.',
    ckpt_every_sec: 60,
    grace_sec: 1,
    shard_index: 2,
    shard_count: 4,
    store: 'file://../store',
  });

async function submit(attempt: number): Promise<Handle> {
  const [outcome] = await backend.submitMany([{ spec: spec(attempt), slot: 'h1' }]);
  if (outcome instanceof Error) throw outcome;
  return outcome!;
}

async function poll(handle: Handle): Promise<PollResult> {
  return (await backend.pollMany([{ handle, eventsFrom: 0 }]))[0]!;
}

const until = (what: string, check: () => Promise<boolean>, ms = 20_000) => waitFor(check, ms, what, 200);

describe('SshBackend.submitMany', () => {
  it('is idempotent per attempt, and refuses a new attempt while an earlier one of the unit still runs', async () => {
    const first = await submit(1);
    expect(first.session).toBe('sy-guard-20261126T0000-0badc0de-s2-1');
    // Several attempts of one host: one round trip answers each on its own.
    const both = await backend.submitMany([spec(1), spec(2)].map((s) => ({ spec: s, slot: 'h1' })));
    expect(both[0]).toEqual(first);
    expect(both[1]).toBeInstanceOf(Error);
    expect(await submit(1)).toEqual(first); // already started: nothing new
    const refused = /^ssh h1: an earlier attempt of guard-20261126T0000-0badc0de\/shards\/2 still runs in tmux session sy-guard-20261126T0000-0badc0de-s2-1; stop it before starting attempt 2$/;
    await expect(submit(2)).rejects.toThrow(refused); // at once, before its runner has written a status
    await until('attempt 1 running', async () => (await poll(first)).state === 'running');
    await expect(submit(2)).rejects.toThrow(refused);

    await backend.cancel(first);
    await until('attempt 1 ended', async () => TERMINAL.has((await poll(first)).state));
    const second = await submit(2);
    await until('attempt 2 running', async () => (await poll(second)).state === 'running');
    await backend.cancel(second);
    await until('attempt 2 ended', async () => TERMINAL.has((await poll(second)).state));
  }, 90_000);
});

describe('SshBackend.pollMany', () => {
  it('says when the host did not answer, rather than reporting the runner gone', async () => {
    const third = await submit(3);
    await until('attempt 3 running', async () => (await poll(third)).state === 'running');
    await hosts.stopSshd('h1');
    try {
      const silent = await poll(third);
      expect(silent.state).toBe('lost');
      expect(silent.unanswered).toBe(true);
    } finally {
      await hosts.startSshd('h1');
    }
    // It ran on throughout: once the host answers again, so does the poll.
    const again = await poll(third);
    expect(again.state).toBe('running');
    expect(again.unanswered).toBe(false);
    await backend.cancel(third, { force: true });
  }, 90_000);
});

describe('a running attempt polled', () => {
  it('is seen through its runner\'s live view: its metrics, its last line, its events past those read; its runner killed -9, it is lost', async () => {
    // epoch 2 comes after the runner has started: the view its ticks keep shows it
    const experiment = 'echo "epoch 1"; echo \'{"step": 1}\' >> "$SWITCHYARD_METRICS"; sleep 1; echo "epoch 2"; echo \'{"step": 2}\' >> "$SWITCHYARD_METRICS"; exec sleep 300';
    const live = testAttemptSpec({ ...spec(1), unit_id: 'guard-20261126T0000-0badc0de/shards/3', shard_index: 3, command: ['sh', '-c', experiment], store: 'file://../store' });
    const [handle] = await backend.submitMany([{ spec: live, slot: 'h1' }]);
    if (!handle || handle instanceof Error) throw handle ?? new Error('no answer');
    const host = new RemoteHost(target, 'switchyard', pool);
    const dir = host.layout.attemptDir(live.unit_id, 1);
    let last: PollResult | undefined;
    await until('epoch 2 in the live view', async () => {
      last = (await backend.pollMany([{ handle, eventsFrom: 0 }]))[0]!;
      return last.last_line === 'epoch 2' && last.metrics?.step === 2;
    });
    expect(last).toMatchObject({ state: 'running', unanswered: false });
    expect(last!.events).toEqual([{ type: 'restored', step: null, attempt: 1 }]);
    // the poll read the view, not the files: the view names the runner, which /proc shows running
    const view = JSON.parse((await host.run(['cat', `${dir}/live.json`])).stdout);
    expect(view).toMatchObject({ events: 1, metrics: '{"step": 2}', last_line: 'epoch 2' });
    expect((await backend.pollMany([{ handle, eventsFrom: 1 }]))[0]!.events).toEqual([]);

    // the hosts share this machine's process table: the pid the view names is the runner's here too
    expect(readFileSync(`/proc/${view.pid}/cmdline`, 'utf8')).toContain(`${dir.slice(host.layout.root.length + 1)}/attempt.json`);
    process.kill(view.pid, 'SIGKILL');
    await until('the attempt lost', async () => (await poll(handle)).state === 'lost');
    hosts.killOn('h1', 'sleep 300', 'SIGKILL'); // its experiment, should the pty's hangup have left it
  }, 90_000);
});

describe('SshBackend.logs followed', () => {
  it('a host that refuses the connection fails the follow with why, and no rejection escapes', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const escaped: unknown[] = [];
    const onUnhandled = (err: unknown) => escaped.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const gone = new RemoteHost({ ...target, name: 'gone', host: '127.0.0.1', port: closed }, 'switchyard', pool);
      const refused = new SshBackend({ ...backendOptions(), hosts: ['gone'], openHost: async () => gone });
      const handle = { backend: 'ssh' as const, host: 'gone', run_id: 'r-1', attempt: 1, root: 'switchyard', session: 'sy-r-1-1' };
      const drain = async () => {
        for await (const chunk of refused.logs(handle, { follow: true })) void chunk;
      };
      await expect(drain()).rejects.toThrow(/^ssh gone \([^)]*127\.0\.0\.1:\d+\): connection refused/);
      // A rejection left unhandled is reported after the microtasks of the turn it happened in.
      await new Promise((r) => setImmediate(r));
      expect(escaped).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }, 30_000);

  it('an abort while the next chunk of a quiet log is awaited ends the follow at once and its tail on the host', async () => {
    const quiet = testAttemptSpec({ ...spec(1), unit_id: 'guard-20261126T0000-0badc0de/shards/5', shard_index: 5 });
    const [handle] = await backend.submitMany([{ spec: quiet, slot: 'h1' }]);
    if (!handle || handle instanceof Error) throw handle ?? new Error('no answer');
    try {
      await until('the attempt running', async () => (await poll(handle)).state === 'running');
      const file = `${new RemoteHost(target, 'switchyard', pool).layout.attemptDir(quiet.unit_id, 1)}/stderr.log`;
      // The hosts share this machine's process table; -x: the whole command line, not a shell naming it.
      const tails = () => {
        try {
          return Number(execFileSync('pgrep', ['-c', '-x', '-f', `tail -n [+]1 -F ${file}`]).toString());
        } catch {
          return 0; // pgrep exits 1 when none match
        }
      };
      const controller = new AbortController();
      const it = backend.logs(handle, { follow: true, stream: 'stderr', signal: controller.signal })[Symbol.asyncIterator]();
      const next = it.next();
      await until('tail -F on the host', async () => tails() === 1);
      controller.abort();
      await expect(next).resolves.toEqual({ done: true, value: undefined });
      await until('tail -F on the host gone', async () => tails() === 0, 5000);
    } finally {
      await backend.cancel(handle, { force: true });
    }
  }, 60_000);
});

describe('prepareHost', () => {
  it('fills an empty copy of the project from one tar, gzipped: the tree rsync would make', async () => {
    const project = path.join(tmp, 'tarred');
    mkdirSync(path.join(project, 'src', 'deep er'), { recursive: true });
    writeFileSync(path.join(project, 'train.py'), 'print("hi")\n');
    writeFileSync(path.join(project, 'src', 'deep er', "it's ünïcode.txt"), 'x'.repeat(100_000));
    writeFileSync(path.join(project, 'run.sh'), '#!/bin/sh\n');
    chmodSync(path.join(project, 'run.sh'), 0o755);
    symlinkSync('train.py', path.join(project, 'link.py'));
    mkdirSync(path.join(project, '.switchyard'));
    writeFileSync(path.join(project, '.switchyard', 'left-out'), 'state\n');

    const fresh = new RemoteHost(target, 'tarred-root', pool);
    await fresh.run(['mkdir', '-p', fresh.layout.runtime]);
    await fresh.run(['ln', '-sf', process.execPath, fresh.layout.node]);
    const prepared = await prepareHost(fresh, { projectRoot: project, runnerBundle: RUNNER, packs: new RepoPacks() });
    expect(prepared.repo.via).toBe('tar');
    expect(prepared.repo.bytes).toBeLessThan(20_000); // gzipped: the 100 kB file is one letter repeated

    // Every entry's type, mode and link target, and every file's content.
    const listing = `find . -printf '%p %y %m %l\\n' && find . -type f -exec sha256sum {} +`;
    const there = (await fresh.sh(`cd "$1" && ${listing}`, [fresh.layout.repo])).stdout;
    const viaRsync = path.join(tmp, 'via-rsync');
    execFileSync('rsync', ['-a', '--exclude=.switchyard/', '--', `${project}/`, `${viaRsync}/`]);
    const here = execFileSync('sh', ['-c', listing], { cwd: viaRsync }).toString();
    const sorted = (text: string) => text.split('\n').filter(Boolean).sort();
    expect(sorted(there)).toEqual(sorted(here));
    expect(there).not.toContain('left-out');
  });
});
