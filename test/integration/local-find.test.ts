// LocalBackend.findSubmitted: a runner of its own (the agent's, detach=1) that a submit started
// is found as startDetached would find it (its marker, or its spec on a command line, started
// just before a crash), with the handle a submit answers; an attempt never started is not, and
// looking starts and writes nothing. An in-process attempt is found only while this process runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../scripts/lib/backends/local.js';
import { processStartTime } from '../../scripts/lib/process-alive.js';
import { workPaths } from '../../scripts/lib/runner/attempt-runner.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

let tmp: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-local-find-'));
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

const spec = (attempt: number) => ({ run_id: 'r', unit_id: 'r', attempt }) as AttemptSpec;

/** A stand-in runner: a live process whose command line names the attempt's spec file, as the runner's does. */
function runnerFor(specFile: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600_000)', '--', '--spec', specFile], { stdio: 'ignore' });
  children.push(child);
  return child;
}

describe('the local findSubmitted', () => {
  it('finds a runner of its own by its marker, or by its spec on a command line; one never started is not found', async () => {
    const workDir = path.join(tmp, 'work');
    const backend = new LocalBackend({ root: tmp, store: new FileStore('file://store', path.join(tmp, 'store')), workDir: () => workDir, detached: { runnerBundle: path.join(tmp, 'unused.mjs') } });
    const sub = (n: number) => ({ spec: spec(n), slot: 'local' });

    const first = workPaths(workDir, 1).attempt;
    mkdirSync(first, { recursive: true });
    const marked = runnerFor(path.join(first, 'attempt.json'));
    const start = processStartTime(marked.pid!);
    writeFileSync(path.join(first, 'runner.pid'), `${marked.pid} ${start}\n`);
    // Attempt 2's runner started just before a crash: no marker yet, its spec on its command line.
    const unmarked = runnerFor(path.join(workPaths(workDir, 2).attempt, 'attempt.json'));
    const handle = (n: number, pid: number) => ({ backend: 'local', pid, pid_start: processStartTime(pid), run_id: 'r', unit: 'r', work_dir: workDir, attempt: n, detached: true });

    expect(await backend.findSubmitted([sub(1), sub(2), sub(3)])).toEqual([handle(1, marked.pid!), handle(2, unmarked.pid!), null]);
    expect(readdirSync(workDir).sort()).toEqual(['attempts']);
    expect(existsSync(workPaths(workDir, 3).attempt)).toBe(false);
  });

  it('in process: an attempt this process did not start is not found', async () => {
    const backend = new LocalBackend({ root: tmp, store: new FileStore('file://store', path.join(tmp, 'store')), workDir: () => path.join(tmp, 'work') });
    expect(await backend.findSubmitted([{ spec: spec(1), slot: 'local' }])).toEqual([null]);
  });
});
