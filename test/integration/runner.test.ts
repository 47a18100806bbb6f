// The runner against real processes: signals, grace, exit codes, checkpoint upload, and the
// reaper that kills the experiment when the runner itself is SIGKILLed; and where it once
// failed: a time limit past what a Node timer holds, a step saved again (after its upload, or
// before it and the runner died), and a daemon the experiment leaves holding its output.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttemptSpec, RunnerEvent } from '../../scripts/lib/runner/attempt-spec.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Handle, PollResult } from '../../scripts/lib/backends/backend.js';
import { LocalBackend } from '../../scripts/lib/backends/local.js';
import { saveCheckpoint, verifyStep } from '../../scripts/lib/ckpt/checkpoint.js';
import { claimUnit } from '../../scripts/lib/runner/attempt-fence.js';
import { AttemptRunner } from '../../scripts/lib/runner/attempt-runner.js';
import { storedSteps } from '../../scripts/lib/runner/store-checkpoints.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { commitToStore } from '../helpers/checkpoints.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { REPO, waitFor } from '../helpers/sandbox.js';

// Counts steps, checkpointing every 0.2 s; on SIGTERM saves once more and exits 75.
const COUNTER = `
import json, os, signal, sys, time
import switchyard_ckpt as ck
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
raw = ck.load("state.json")
step = json.loads(raw)["step"] if raw else 0
print("start", step, flush=True)
end = int(os.environ.get("STEPS", "1000000"))
last = time.monotonic()
while step < end:
    time.sleep(0.01)
    step += 1
    if stop or time.monotonic() - last > 0.2:
        ck.save(step, {"state.json": json.dumps({"step": step})})
        last = time.monotonic()
        print("saved", step, flush=True)
        if stop:
            sys.exit(75)
open(os.path.join(os.environ["SWITCHYARD_OUTPUT_DIR"], "result.txt"), "w").write(str(step))
`;

// Prints "ready", then waits for the file "go" in its folder; SIGTERM kills it (no handler).
const WAITER = `
import os, time
print("ready", flush=True)
while not os.path.exists("go"):
    time.sleep(0.02)
`;

// Saves step 1, waits for "go", saves step 1 again with other contents, and exits 0.
const RESAVER = `
import os, time
import switchyard_ckpt as ck
ck.save(1, {"state.json": "first"})
print("saved first", flush=True)
while not os.path.exists("go"):
    time.sleep(0.02)
ck.save(1, {"state.json": "second"})
print("saved second", flush=True)
`;

// Saves step 1, waits for "go", saves step 1 again with the same contents, and exits 0.
const SAME_RESAVER = RESAVER.replace('{"state.json": "second"}', '{"state.json": "first"}');

// Leaves a process in a session of its own (out of reach of the group kill) holding its output
// pipes, as a daemon some libraries start does, and exits 0.
const DAEMONIZER = `
import os, subprocess
p = subprocess.Popen(["setsid", "sleep", "300"])
open("daemon.pid", "w").write(str(p.pid))
print("daemon started", flush=True)
`;

// Prints the model of the restored checkpoint.
const PRINTER = `
import switchyard_ckpt as ck
print("model", ck.load("model.bin").decode(), flush=True)
`;

let tmp: string;
let store: FileStore;

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'runner-'));
  mkdirSync(path.join(tmp, 'exp'));
  writeFileSync(path.join(tmp, 'exp', 'counter.py'), COUNTER);
  writeFileSync(path.join(tmp, 'exp', 'waiter.py'), WAITER);
  writeFileSync(path.join(tmp, 'exp', 'resaver.py'), RESAVER);
  writeFileSync(path.join(tmp, 'exp', 'same-resaver.py'), SAME_RESAVER);
  writeFileSync(path.join(tmp, 'exp', 'daemonizer.py'), DAEMONIZER);
  writeFileSync(path.join(tmp, 'exp', 'printer.py'), PRINTER);
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => {
  const pidFile = path.join(tmp, 'exp', 'daemon.pid');
  if (existsSync(pidFile)) {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** The self-contained runner, built first if dist/ has none. */
function builtRunner(): string {
  const bundle = path.join(REPO, 'dist/runner/run-attempt.mjs');
  if (!existsSync(bundle)) execFileSync(process.execPath, ['build.mjs'], { cwd: REPO });
  return bundle;
}

/** Polls an attempt until it is no longer running: its last poll, and every event it gave. */
async function settled(backend: LocalBackend, handle: Handle): Promise<{ last: PollResult; events: PollResult['events'] }> {
  const events: PollResult['events'] = [];
  for (;;) {
    const [last] = await backend.pollMany([{ handle, eventsFrom: events.length }]);
    events.push(...last!.events);
    if (last!.state !== 'running') return { last: last!, events };
    await backend.waitForChange(50);
  }
}

function spec(over: Partial<AttemptSpec> = {}): AttemptSpec {
  return testAttemptSpec({ run_id: 'toy-default-20260101T0000-00000000', command: 'python3 counter.py', store: store.url, ...over });
}

function runner(s: AttemptSpec, events: RunnerEvent[] = [], out: string[] = []) {
  return new AttemptRunner(s, {
    root: tmp,
    workDir: path.join(tmp, 'work'),
    store,
    onEvent: (e) => events.push(e),
    echo: (_stream, b) => out.push(b.toString()),
  });
}

describe('runner', () => {
  it('on SIGTERM the experiment checkpoints within the grace and the attempt ends preempted', async () => {
    const events: RunnerEvent[] = [];
    const out: string[] = [];
    const r = runner(spec(), events, out);
    const done = r.run();
    await waitFor(() => out.join('').includes('saved'), 15_000, 'a first checkpoint');
    const t0 = Date.now();
    r.requestStop('preempt');
    const status = await done;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(status).toMatchObject({ state: 'preempted', exit_code: 75 });
    const savedSteps = [...out.join('').matchAll(/saved (\d+)/g)].map((m) => Number(m[1]));
    // The step saved on SIGTERM is the last one, and it reached the store before the status.
    expect(status.last_step).toBe(savedSteps.at(-1));
    expect(existsSync(store.pathOf(`runs/${status.run_id}/ckpt/${status.last_step}/manifest.json`))).toBe(true);
    expect(events.filter((e) => e.type === 'ckpt.committed').at(-1)).toMatchObject({ step: status.last_step });
    const stored = JSON.parse(readFileSync(store.pathOf(`runs/${status.run_id}/attempts/1/status.json`), 'utf8'));
    expect(stored.state).toBe('preempted');

    // The next attempt restores exactly that step.
    const out2: string[] = [];
    const next = runner(spec({ attempt: 2, env: { STEPS: String(status.last_step! + 5) } }), [], out2);
    const second = await next.run();
    expect(second).toMatchObject({ state: 'succeeded', restored_step: status.last_step });
    expect(out2.join('')).toContain(`start ${status.last_step}`);
    expect(readFileSync(store.pathOf(`runs/${status.run_id}/outputs/result.txt`), 'utf8')).toBe(String(status.last_step! + 5));
  });

  it('a runner whose unit a newer attempt has claimed (its host given up as lost) stops writing to the store', async () => {
    const events: RunnerEvent[] = [];
    const s = spec();
    const done = runner(s, events).run();
    await waitFor(() => events.some((e) => e.type === 'ckpt.committed'), 15_000, 'a first upload');
    await claimUnit(store, s.unit_id, 2);
    const status = await done;
    expect(status).toMatchObject({ state: 'cancelled', reason: 'attempt 2 took the unit over (this one was given up as lost)' });
    const notice = events.findIndex((e) => e.type === 'notice' && e.line.includes(`attempt 2 has taken ${s.unit_id} over`));
    expect(notice).toBeGreaterThan(-1);
    // Nothing uploaded, pruned or saved after it: the newer attempt owns the unit's steps.
    expect(events.slice(notice).map((e) => e.type).filter((t) => t !== 'notice')).toEqual([]);
    expect(existsSync(path.join(tmp, 'store', 'runs', s.unit_id, 'outputs.manifest.json'))).toBe(false);
  });

  it('an older attempt that starts after a newer one claimed the unit ends cancelled and touches no checkpoint', async () => {
    const s = spec({ attempt: 2, env: { STEPS: '3' } });
    await commitToStore(store, s.unit_id, path.join(tmp, 'attempt-3-ckpt'), 5, 'attempt 3'); // the newer attempt's
    await claimUnit(store, s.unit_id, 3);
    const local = path.join(tmp, 'work', 'ckpt');
    await saveCheckpoint(local, 7, { 'state.json': '{"step":7}' }, { keep: 3 }); // attempt 2's first run, never uploaded
    const events: RunnerEvent[] = [];
    const out: string[] = [];
    const status = await runner(s, events, out).run();
    expect(status).toMatchObject({ state: 'cancelled', reason: 'attempt 3 took the unit over (this one was given up as lost)', restored_step: null });
    expect(out.join('')).not.toContain('start');
    expect(events.map((e) => e.type).filter((t) => t !== 'notice')).toEqual([]);
    expect((await storedSteps(store, s.unit_id)).map((x) => x.step)).toEqual([5]);
    expect(readdirSync(local)).toEqual(['7']);
    expect((await verifyStep(path.join(local, '7'))).ok).toBe(true);
    expect(JSON.parse(readFileSync(store.pathOf(`runs/${s.unit_id}/attempts/current.json`), 'utf8'))).toEqual({ attempt: 3 });
  });

  it('a store whose checkpoints cannot be read ends the attempt preempted (it resumes), the local copies left alone', async () => {
    const s = spec({ env: { STEPS: '3' } });
    const local = path.join(tmp, 'work', 'ckpt');
    await commitToStore(store, s.unit_id, local, 2, 'two'); // committed and uploaded by an earlier attempt here
    const unreadable = Object.create(store) as FileStore;
    const reset = (key: string) => {
      if (key.includes('/ckpt/')) throw new Error('read ECONNRESET');
    };
    unreadable.getBytes = async (key) => (reset(key), store.getBytes(key));
    unreadable.get = async (key, dest) => (reset(key), store.get(key, dest));
    unreadable.stat = async (key) => (reset(key), store.stat(key));
    const out: string[] = [];
    const status = await new AttemptRunner(s, { root: tmp, workDir: path.join(tmp, 'work'), store: unreadable, echo: (_s, b) => out.push(b.toString()) }).run();
    expect(status).toMatchObject({ state: 'preempted', reason: 'cannot read checkpoint step 2 from the store: read ECONNRESET (tried 3 times)' });
    expect(out.join('')).not.toContain('start');
    expect(readdirSync(local)).toEqual(['2']);
    expect((await verifyStep(path.join(local, '2'))).ok).toBe(true);
    expect((await storedSteps(store, s.unit_id)).map((x) => x.step)).toEqual([2]);
  });

  it('kills an experiment that ignores SIGTERM once the grace period is over', async () => {
    const out: string[] = [];
    const r = runner(spec({ command: "trap '' TERM; echo ready; sleep 60 & wait", grace_sec: 1 }), [], out);
    const done = r.run();
    await waitFor(() => out.join('').includes('ready'), 10_000, 'the experiment');
    const t0 = Date.now();
    r.requestStop('cancel');
    const status = await done;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(status).toMatchObject({ state: 'cancelled', signal: 'SIGKILL' });
  });

  it.each([
    ['exit 0', 'succeeded', 0],
    ['exit 3', 'failed', 3],
    ['exit 75', 'preempted', 75],
    ['kill -TERM $$', 'preempted', null],
  ])('classifies `%s` as %s', async (command, state, code) => {
    const status = await runner(spec({ command })).run();
    expect(status).toMatchObject({ state, exit_code: code });
  });

  it('runs setup first, and a failing setup fails the attempt without starting the command', async () => {
    const out: string[] = [];
    expect(await runner(spec({ setup: 'echo setting-up', command: 'echo training' }), [], out).run()).toMatchObject({ state: 'succeeded' });
    expect(out.join('')).toBe('setting-up\ntraining\n');
    const failed: string[] = [];
    const status = await runner(spec({ setup: 'exit 4', command: 'echo training' }), [], failed).run();
    expect(status).toMatchObject({ state: 'failed', reason: 'setup exited 4', exit_code: 4 });
    expect(failed.join('')).not.toContain('training');
  });

  it('reports a command that cannot start as failed with exit 127', async () => {
    const status = await runner(spec({ command: ['/nonexistent/binary'] })).run();
    expect(status).toMatchObject({ state: 'failed', exit_code: 127 });
  });

  it('masks a declared secret in all it writes and echoes: logs (cut mid-secret), metrics, the store', async () => {
    const secret = `sy-canary-${process.pid}'"$HOME \\x y\nsecond line`;
    writeFileSync(path.join(tmp, 'secrets.json'), JSON.stringify({ SY_CANARY: secret, UNDECLARED: 'not-a-secret-here' }));
    writeFileSync(
      path.join(tmp, 'exp', 'leak.py'),
      `import json, os, sys, time
v = os.environ["SY_CANARY"]
sys.stdout.write(v[:8]); sys.stdout.flush(); time.sleep(0.3)  # the secret arrives in two chunks
print(v[8:], flush=True)
print("err", v, os.environ.get("UNDECLARED"), file=sys.stderr, flush=True)
with open(os.environ["SWITCHYARD_METRICS"], "a") as m:
    m.write(json.dumps({"step": 1, "note": v}) + "\\n")
print("metrics file", os.environ["SWITCHYARD_METRICS"], flush=True)
time.sleep(0.7)  # a copy of the metrics while it runs, too
`,
    );
    const out: string[] = [];
    const events: RunnerEvent[] = [];
    const s = spec({ command: 'python3 leak.py', secrets: ['SY_CANARY'], secrets_file: 'secrets.json', env: { UNDECLARED: 'not-a-secret-here' } });
    expect(await runner(s, events, out).run()).toMatchObject({ state: 'succeeded' });
    expect(out.join('').match(/\[redacted SY_CANARY\]/g)).toHaveLength(2);
    expect(out.join('')).not.toContain('sy-canary-');
    const attempt = path.join(tmp, 'work/attempts/1');
    expect(readFileSync(path.join(attempt, 'stdout.log'), 'utf8')).toMatch(/^\[redacted SY_CANARY\]\nmetrics file \S+\n$/);
    expect(readFileSync(path.join(attempt, 'stderr.log'), 'utf8')).toBe('err [redacted SY_CANARY] not-a-secret-here\n');
    expect(readFileSync(path.join(attempt, 'metrics.jsonl'), 'utf8')).toBe('{"step": 1, "note": "[redacted SY_CANARY]"}\n');
    // The experiment's own metrics file lived outside the project and is gone.
    const raw = /metrics file (\S+)/.exec(readFileSync(path.join(attempt, 'stdout.log'), 'utf8'))![1]!;
    expect(raw.startsWith(tmp)).toBe(false);
    expect(existsSync(path.dirname(raw))).toBe(false);
    const files = execFileSync('find', [tmp, '-type', 'f', '!', '-name', 'secrets.json']).toString().trim().split('\n');
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) expect(readFileSync(f).includes('sy-canary-'), f).toBe(false);
  });

  it("keeps the experiment's private metrics folder through a setup step and to the end of the attempt", async () => {
    // The folder is the reaper's to remove should the runner die: a setup's end or the experiment's must not count.
    writeFileSync(path.join(tmp, 'secrets.json'), JSON.stringify({ SY_CANARY: 'sy-canary-kept' }));
    const write = `python3 -c 'import os; open(os.environ["SWITCHYARD_METRICS"], "a").write("{\\"step\\": 1}\\n")'`;
    const s = spec({ setup: 'true', command: `sleep 0.3; ${write}; sleep 0.3; ${write}`, secrets: ['SY_CANARY'], secrets_file: 'secrets.json' });
    expect(await runner(s).run()).toMatchObject({ state: 'succeeded' });
    expect(readFileSync(path.join(tmp, 'work/attempts/1/metrics.jsonl'), 'utf8')).toBe('{"step": 1}\n{"step": 1}\n');
  });

  it('fails the attempt, naming the key, when a declared secret is not in its secrets file', async () => {
    writeFileSync(path.join(tmp, 'secrets.json'), JSON.stringify({ OTHER: 'x' }));
    const status = await runner(spec({ command: 'echo ran', secrets: ['SY_ABSENT'], secrets_file: 'secrets.json' })).run();
    expect(status).toMatchObject({ state: 'failed' });
    expect(status.reason).toBe('runner error: secrets: SY_ABSENT declared by the experiment but not in secrets.json; add it to .env (for a remote host, then run make bootstrap again)');
  });

  it('the local backend reports an attempt done only once its outputs are in the store', async () => {
    // A slow store widens the window between the runner's final state and its stored outputs.
    const slow = Object.create(store) as FileStore;
    slow.put = async (...args) => (await sleep(300), store.put(...args));
    const backend = new LocalBackend({ root: tmp, store: slow, workDir: () => path.join(tmp, 'work') });
    const [handle] = (await backend.submitMany([{ spec: spec({ env: { STEPS: '5' } }), slot: 'local' }])) as Handle[];
    const { last, events } = await settled(backend, handle!);
    expect(last.state).toBe('succeeded');
    expect(await store.stat('runs/toy-default-20260101T0000-00000000/outputs/result.txt')).toMatchObject({ size: 1 });
    expect(events.map((e) => e?.type)).toContain('outputs.saved');
  });

  it('a runner of its own stopped the moment it is spawned ends cancelled, not lost, and never starts the experiment', async () => {
    const backend = new LocalBackend({ root: tmp, store, workDir: () => path.join(tmp, 'work'), detached: { runnerBundle: builtRunner() } });
    const [handle] = await backend.submitMany([{ spec: spec(), slot: 'local' }]);
    // At once: node is still loading the runner, which has no signal handlers yet.
    await backend.cancel(handle!);
    const { last } = await settled(backend, handle!);
    expect(last.state).toBe('cancelled');
    expect(readFileSync(path.join(tmp, 'work/attempts/1/stdout.log'), 'utf8')).not.toContain('start');
  });

  it('the experiment dies with the runner, even when the runner is SIGKILLed after a SIGTERM to its group, and its private metrics folder goes too', async () => {
    writeFileSync(path.join(tmp, 'secrets.json'), JSON.stringify({ SY_CANARY: 'sy-canary-for-the-reaper' }));
    const script = path.join(tmp, 'run.mts');
    writeFileSync(
      script,
      `import { AttemptRunner } from ${JSON.stringify(path.join(REPO, 'scripts/lib/runner/attempt-runner.ts'))};
       import { FileStore } from ${JSON.stringify(path.join(REPO, 'scripts/lib/store/file-store.ts'))};
       const spec = JSON.parse(process.argv[2]);
       const r = new AttemptRunner(spec, { root: ${JSON.stringify(tmp)}, workDir: ${JSON.stringify(path.join(tmp, 'work'))},
         store: new FileStore('file://store', ${JSON.stringify(path.join(tmp, 'store'))}),
         echo: (_s, b) => process.stdout.write(b) });
       await r.run();`,
    );
    // Deaf to SIGTERM (sleep inherits the ignored signal), as an experiment saving through a stop
    // may be; given a PATH without the system's folders, where the reaper still finds its tools.
    const leaky = spec({
      command: `trap '' TERM; echo pid $$ metrics "$SWITCHYARD_METRICS"; exec /bin/sleep 60`,
      env: { PATH: '/nonexistent' },
      secrets: ['SY_CANARY'],
      secrets_file: 'secrets.json',
    });
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(leaky)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(() => /pid \d+ metrics \S+/.test(out), 20_000, 'the experiment to start');
    const [, pidText, metrics] = /pid (\d+) metrics (\S+)/.exec(out)!;
    const pid = Number(pidText);
    expect(() => process.kill(pid, 0)).not.toThrow();
    expect(existsSync(path.dirname(metrics!))).toBe(true);
    // A stop signals the experiment's whole group: the reaper, in a session of its own, lives on.
    process.kill(-pid, 'SIGTERM');
    child.kill('SIGKILL');
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 5_000, 'the orphaned experiment to be reaped');
    await waitFor(() => !existsSync(path.dirname(metrics!)), 5_000, 'the private metrics folder to be removed');
  });

  it('ships as one self-contained file: the bundled run-attempt.mjs runs an attempt and honours SIGTERM', async () => {
    const bundle = builtRunner();
    const specFile = path.join(tmp, 'attempt.json');
    writeFileSync(specFile, JSON.stringify(spec({ store: `file://${store.dir}` })));
    // Run from a folder without node_modules, as on a worker.
    const child = spawn(process.execPath, [bundle, '--spec', specFile, '--root', tmp, '--work', path.join(tmp, 'work')], {
      cwd: tmp,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(() => out.includes('saved'), 20_000, 'a checkpoint from the bundled runner');
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('close', r));
    expect(code, out).toBe(143);
    const status = JSON.parse(readFileSync(path.join(tmp, 'work/attempts/1/status.json'), 'utf8'));
    expect(status).toMatchObject({ state: 'preempted', exit_code: 75 });
    const events = readFileSync(path.join(tmp, 'work/attempts/1/events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(events.find((e) => e.type === 'ckpt.committed')).toBeTruthy();
    expect(existsSync(store.pathOf(`runs/${status.run_id}/ckpt/${status.last_step}/manifest.json`))).toBe(true);
  });

  it.skipIf(process.getuid?.() !== 0)('a full work folder ends the attempt as failed with one clear line; the committed step stays', async () => {
    // Needs root: the work folder is a small tmpfs that the experiment's output fills.
    const work = path.join(tmp, 'work');
    mkdirSync(work);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', work]);
    try {
      const go = path.join(tmp, 'go');
      writeFileSync(
        path.join(tmp, 'exp', 'flood.py'),
        `import os, sys, time\nimport switchyard_ckpt as ck\nck.save(1, {"state.json": "{}"})\nwhile not os.path.exists(${JSON.stringify(go)}): time.sleep(0.02)\nwhile True: sys.stdout.write("x" * 65536)\n`,
      );
      const events: RunnerEvent[] = [];
      const r = runner(spec({ command: 'python3 flood.py' }), events);
      const done = r.run();
      await waitFor(() => events.some((e) => e.type === 'ckpt.committed'), 15_000, 'step 1 in the store');
      writeFileSync(go, '');
      const status = await done;
      expect(status.state).toBe('failed');
      expect(status.reason).toMatch(/^work folder \S+: no space left on device \(\d+(\.\d)? [KM]?B free\); free space, then run the same command again/);
      expect(existsSync(store.pathOf(`runs/${status.run_id}/ckpt/1/manifest.json`))).toBe(true);
    } finally {
      execFileSync('umount', [work]);
    }
  });
});

describe('runner, where it once failed', () => {
  it('a time limit of 30 days (past the 24.8 days a Node timer holds) does not stop the attempt at once', async () => {
    const out: string[] = [];
    const r = runner(spec({ command: 'python3 waiter.py', time_limit_sec: 30 * 86_400 }), [], out);
    const done = r.run();
    let ended = false;
    void done.finally(() => (ended = true));
    // Stopped at once, it never says ready: the attempt's end is the answer then.
    await waitFor(() => ended || out.join('').includes('ready'), 20_000, 'the experiment to start');
    writeFileSync(path.join(tmp, 'exp', 'go'), '');
    const status = await done;
    expect(status).toMatchObject({ state: 'succeeded', exit_code: 0 });
  });

  it('a step saved again after its upload goes to the store again: the store holds the newer save', async () => {
    const events: RunnerEvent[] = [];
    const out: string[] = [];
    const r = runner(spec({ command: 'python3 resaver.py' }), events, out);
    const done = r.run();
    await waitFor(() => events.some((e) => e.type === 'ckpt.committed' && e.step === 1), 20_000, 'step 1 in the store');
    writeFileSync(path.join(tmp, 'exp', 'go'), '');
    const status = await done;
    expect(status).toMatchObject({ state: 'succeeded', last_step: 1 });
    expect(out.join('')).toContain('saved second');
    const blob = store.pathOf(`runs/${status.run_id}/ckpt/1/state.json`);
    expect(existsSync(blob) && readFileSync(blob, 'utf8')).toBe('second');
    expect(events.filter((e) => e.type === 'ckpt.committed' && e.step === 1)).toHaveLength(2);
  });

  it('a step saved again with the same files is not uploaded again', async () => {
    const events: RunnerEvent[] = [];
    const out: string[] = [];
    const done = runner(spec({ command: 'python3 same-resaver.py' }), events, out).run();
    await waitFor(() => events.some((e) => e.type === 'ckpt.committed' && e.step === 1), 20_000, 'step 1 in the store');
    writeFileSync(path.join(tmp, 'exp', 'go'), '');
    expect(await done).toMatchObject({ state: 'succeeded', last_step: 1 });
    expect(out.join('')).toContain('saved second');
    expect(events.filter((e) => e.type === 'ckpt.committed' && e.step === 1)).toHaveLength(1);
  });

  it('an experiment that leaves a process of another session holding its output still ends its attempt', async () => {
    const out: string[] = [];
    const status = await runner(spec({ command: ['python3', 'daemonizer.py'] }), [], out).run();
    expect(status).toMatchObject({ state: 'succeeded', exit_code: 0 });
    expect(out.join('')).toContain('daemon started');
  }, 60_000);

  it('a step saved again here whose runner died before uploading that save is adopted, not overwritten by the stored save', async () => {
    const s = spec({ command: 'python3 printer.py', attempt: 2 });
    const first = await commitToStore(store, s.unit_id, path.join(tmp, 'elsewhere'), 1, 'first');
    const firstAt = JSON.parse(readFileSync(store.pathOf(first.key), 'utf8')).created_at as string;
    await waitFor(() => new Date().toISOString() > firstAt, 5_000, 'the clock to pass the first save');
    await saveCheckpoint(path.join(tmp, 'work', 'ckpt'), 1, { 'model.bin': 'second', 'opt/state.json': '{"step":1}' }, { keep: 10 });
    const events: RunnerEvent[] = [];
    const out: string[] = [];
    const status = await runner(s, events, out).run();
    expect(status).toMatchObject({ state: 'succeeded', restored_step: 1 });
    expect(out.join('')).toContain('model second');
    expect(readFileSync(store.pathOf(`runs/${s.unit_id}/ckpt/1/model.bin`), 'utf8')).toBe('second');
  });

  it('a stored save of the step later than the local one is the one restored', async () => {
    const s = spec({ command: 'python3 printer.py', attempt: 2 });
    await saveCheckpoint(path.join(tmp, 'work', 'ckpt'), 1, { 'model.bin': 'local', 'opt/state.json': '{"step":1}' }, { keep: 10 });
    const localAt = JSON.parse(readFileSync(path.join(tmp, 'work', 'ckpt', '1', 'manifest.json'), 'utf8')).created_at as string;
    await waitFor(() => new Date().toISOString() > localAt, 5_000, 'the clock to pass the local save');
    await commitToStore(store, s.unit_id, path.join(tmp, 'elsewhere'), 1, 'stored');
    const out: string[] = [];
    const status = await runner(s, [], out).run();
    expect(status).toMatchObject({ state: 'succeeded', restored_step: 1 });
    expect(out.join('')).toContain('model stored');
  });
});
