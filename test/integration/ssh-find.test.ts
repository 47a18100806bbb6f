// SshBackend.findSubmitted against a real sshd host with the real runner: a backend that did not
// submit (a later process whose submit answer was lost) finds, for `make stop`, the attempts a
// submit started there, with the handles submitMany answered: one whose session lives, and one
// that has ended (its status.json there, its session gone). It starts and writes nothing: a
// submission never sent, or one whose spec was written without a session started, is not found,
// and no session or folder appears for it. A host that does not answer fails it in one line.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Handle, PollResult, Submission } from '../../scripts/lib/backends/backend.js';
import { SshBackend } from '../../scripts/lib/backends/ssh.js';
import { attemptSession } from '../../scripts/lib/remote/host-layout.js';
import { RemoteHost } from '../../scripts/lib/remote/remote-host.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import { TERMINAL } from '../../scripts/lib/runs/run-record.js';
import { SshPool } from '../../scripts/lib/ssh/pool.js';
import type { SshTarget } from '../../scripts/lib/ssh/target.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { startRunnerHost, type RunnerHost } from '../helpers/runner-host.js';
import type { TestHosts } from '../helpers/ssh-hosts.js';
import { waitFor } from '../helpers/sandbox.js';

const RUN = 'find-20261201T0000-0f1dc0de';
let rig: RunnerHost;
let hosts: TestHosts;
let target: SshTarget;
/** The submitting side's connections; each finding backend opens its own, as a later process would. */
let pool: SshPool;
const pools: SshPool[] = [];

beforeAll(async () => {
  pool = new SshPool();
  rig = await startRunnerHost('syfind', pool);
  ({ hosts, target } = rig);
}, 120_000);

afterAll(async () => {
  for (const p of [pool, ...pools]) await p?.close();
  await rig?.cleanup();
});

/** A backend of its own (a fleet's, or a rented box's) over `host`. */
function backendOver(host: RemoteHost, fleet?: string): SshBackend {
  const opts = rig.backendOptions(async () => host);
  return new SshBackend(fleet ? { ...opts, name: 'fleet', fleet, perHost: 4 } : { ...opts, perHost: 4 });
}

/** The submitting backend: it shares `pool`. */
const submitter = (fleet?: string) => backendOver(new RemoteHost(target, 'switchyard', pool), fleet);

/** A fresh backend on connections of its own, as a later process has; its host's `sh` is spied on. */
function finder(fleet?: string): { backend: SshBackend; host: RemoteHost } {
  const own = new SshPool();
  pools.push(own);
  const host = new RemoteHost(target, 'switchyard', own);
  return { backend: backendOver(host, fleet), host };
}

const spec = (unit: string, command: string[], attempt = 1): AttemptSpec =>
  testAttemptSpec({ run_id: RUN, unit_id: `${RUN}/shards/${unit}`, attempt, command, cwd: '.', ckpt_every_sec: 60, grace_sec: 1, shard_index: Number(unit), shard_count: 2000, store: 'file://../store' });

const sub = (s: AttemptSpec): Submission => ({ spec: s, slot: 'h1' });

async function submitted(backend: SshBackend, subs: Submission[]): Promise<Handle[]> {
  return (await backend.submitMany(subs)).map((outcome) => {
    if (outcome instanceof Error) throw outcome;
    return outcome;
  });
}

async function poll(backend: SshBackend, handle: Handle): Promise<PollResult> {
  return (await backend.pollMany([{ handle, eventsFrom: 0 }]))[0]!;
}

/** What the host holds: the runner's tmux sessions, and whether a path exists. */
const sessions = async () => {
  const out = await new RemoteHost(target, 'switchyard', pool).sh(`tmux -L switchyard list-sessions -F '#{session_name}' 2>/dev/null; exit 0`, []);
  return out.stdout.split('\n').filter(Boolean);
};
const exists = async (p: string) => (await new RemoteHost(target, 'switchyard', pool).run(['test', '-e', p], { allowFail: true })).code === 0;
const layout = () => new RemoteHost(target, 'switchyard', pool).layout;

describe('SshBackend.findSubmitted', () => {
  it('finds, from a fresh backend, the running attempts a submit started, with the handles submitMany answered; starts nothing for one never sent', async () => {
    const source = submitter('lab');
    const running = [spec('1', ['sleep', '120']), spec('2', ['sleep', '120'])];
    const handles = await submitted(source, running.map(sub));
    try {
      for (const h of handles) await waitFor(async () => (await poll(source, h)).state === 'running', 30_000, `${h.session} running`, 200);
      const never = spec('3', ['sleep', '120']);
      const { backend } = finder('lab');
      const found = await backend.findSubmitted([...running, never].map(sub));
      expect(found).toEqual([...handles, null]);
      expect(found[0]).toMatchObject({ backend: 'fleet', fleet: 'lab', host: 'h1', unit: `${RUN}/shards/1`, attempt: 1 });
      // Nothing started or written for the one never sent.
      expect(await sessions()).not.toContain(attemptSession(never.unit_id, 1));
      expect(await exists(layout().work(never.unit_id))).toBe(false);
      // A later attempt of a unit whose earlier one runs was not started by any submit either.
      expect(await backend.findSubmitted([sub(spec('1', ['sleep', '120'], 2))])).toEqual([null]);
    } finally {
      for (const h of handles) await source.cancel(h, { force: true });
    }
  }, 120_000);

  it('finds an attempt that ended (its status.json there, its session gone) among a thousand asked for, in round trips of bounded size', async () => {
    const source = submitter();
    const ended = spec('4', ['true']);
    const [handle] = await submitted(source, [sub(ended)]);
    await waitFor(async () => TERMINAL.has((await poll(source, handle!)).state), 30_000, 'the attempt ended', 200);
    await waitFor(async () => !(await sessions()).includes(handle!.session as string), 30_000, 'its session gone', 200);
    expect(await exists(`${layout().attemptDir(ended.unit_id, 1)}/status.json`)).toBe(true);

    const never = Array.from({ length: 1000 }, (_, i) => spec(`${100 + i}`, ['true']));
    const { backend, host } = finder();
    const calls = vi.spyOn(host, 'sh');
    const found = await backend.findSubmitted([...never, ended].map(sub));
    expect(found.at(-1)).toEqual(handle);
    expect(found.slice(0, -1).every((h) => h === null)).toBe(true);
    // One call per 64 KiB of arguments: a thousand attempts' paths and sessions need more than one.
    expect(calls.mock.calls.length).toBeGreaterThan(1);
    for (const [, args] of calls.mock.calls) expect(args.join(' ').length).toBeLessThanOrEqual(64 * 1024);
    expect(await exists(layout().work(never[0]!.unit_id))).toBe(false);
  }, 120_000);

  it('does not take a spec written without a session started for a started attempt', async () => {
    const written = spec('5', ['sleep', '120']);
    const dir = layout().attemptDir(written.unit_id, 1);
    const host = new RemoteHost(target, 'switchyard', pool);
    await host.writeFile(`${dir}/attempt.json`, `${JSON.stringify(written)}\n`);
    const { backend } = finder();
    expect(await backend.findSubmitted([sub(written)])).toEqual([null]);
    expect(await sessions()).not.toContain(attemptSession(written.unit_id, 1));
    expect((await host.run(['ls', '-A', dir])).stdout).toBe('attempt.json\n');
  }, 60_000);

  it('fails in one line naming the host when the host does not answer', async () => {
    await hosts.stopSshd('h1');
    try {
      const { backend } = finder();
      const err = await backend.findSubmitted([sub(spec('6', ['true']))]).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/^ssh h1\b/);
      expect(err!.message).not.toContain('\n');
    } finally {
      await hosts.startSshd('h1');
    }
  }, 60_000);
});
