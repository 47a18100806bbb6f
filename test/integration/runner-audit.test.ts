// The runner against real processes where it once failed: a time limit past what a Node timer
// holds, a step saved again (after its upload, or before it and the runner died), and a daemon
// the experiment leaves holding its output.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttemptSpec, RunnerEvent } from '../../scripts/lib/runner/attempt-spec.js';
import { saveCheckpoint } from '../../scripts/lib/ckpt/checkpoint.js';
import { AttemptRunner } from '../../scripts/lib/runner/attempt-runner.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { commitToStore } from '../helpers/checkpoints.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { waitFor } from '../helpers/sandbox.js';

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
  tmp = mkdtempSync(path.join(os.tmpdir(), 'runner-audit-'));
  mkdirSync(path.join(tmp, 'exp'));
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

function spec(over: Partial<AttemptSpec>): AttemptSpec {
  return testAttemptSpec({ run_id: 'toy-default-20260101T0000-00000000', command: 'python3 waiter.py', store: store.url, ...over });
}

function runner(s: AttemptSpec, events: RunnerEvent[], out: string[]) {
  return new AttemptRunner(s, {
    root: tmp,
    workDir: path.join(tmp, 'work'),
    store,
    onEvent: (e) => events.push(e),
    echo: (_stream, b) => out.push(b.toString()),
  });
}

describe('runner audit', () => {
  it('a time limit of 30 days (past the 24.8 days a Node timer holds) does not stop the attempt at once', async () => {
    const out: string[] = [];
    const r = runner(spec({ time_limit_sec: 30 * 86_400 }), [], out);
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
