// The local backend's poll of a runner of its own (the agent's, make train detach=1) asks
// whether the runner lives before it reads the runner's status. Read the other way round, a
// runner that writes its final status and exits between the two reads is taken for one gone
// without a final status: "lost", and the unit's next attempt runs again what this one did (an
// experiment that had committed its last step ran one step more). The reads are made to wait
// on FIFOs here, so the runner ends exactly between them: the status file's FIFO is where the
// runner blocks until the poll reads it, and the events file's FIFO is written only once the
// runner has exited and been reaped.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../scripts/lib/backends/local.js';
import { processStartTime } from '../../scripts/lib/process-alive.js';
import { workPaths } from '../../scripts/lib/runner/attempt-runner.js';
import { EVENTS_FILE } from '../../scripts/lib/runner/attempt-spec.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-poll-order-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const status = (state: string) => JSON.stringify({ run_id: 'r', attempt: 1, state, reason: null, exit_code: state === 'running' ? null : 0, signal: null, pid: 1, started_at: new Date().toISOString(), ended_at: null, restored_step: null });

describe('the local poll of a runner of its own', () => {
  it('a runner that writes its final status and exits between the reads is running, then ended; one gone without it is lost', async () => {
    const workDir = path.join(tmp, 'work');
    const dir = workPaths(workDir, 1).attempt;
    mkdirSync(dir, { recursive: true });
    const statusFile = path.join(dir, 'status.json');
    const eventsFile = path.join(dir, EVENTS_FILE);
    execFileSync('mkfifo', [statusFile, eventsFile]);
    const backend = new LocalBackend({ root: tmp, store: new FileStore('file://store', path.join(tmp, 'store')), workDir: () => workDir, detached: { runnerBundle: path.join(tmp, 'unused.mjs') } });

    // The "runner": its status as the poll reads it (still running), then it exits.
    const runner = spawn('sh', ['-c', 'printf %s "$1" > "$2"', 'sh', status('running'), statusFile], { stdio: 'ignore' });
    const handle = { backend: 'local' as const, pid: runner.pid!, pid_start: processStartTime(runner.pid!), run_id: 'r', unit: 'r', work_dir: workDir, attempt: 1, detached: true };
    const exited = new Promise((r) => runner.on('exit', r));
    const poll = backend.pollMany([{ handle, eventsFrom: 0 }]);
    await exited; // reaped: no such process from here on
    const events = await open(eventsFile, 'w'); // lets the poll's read of the events go on
    await events.close();
    const [first] = await poll;
    expect(first!.state).toBe('running');

    rmSync(statusFile);
    rmSync(eventsFile);
    writeFileSync(statusFile, status('succeeded'));
    const [second] = await backend.pollMany([{ handle, eventsFrom: 0 }]);
    expect(second!.state).toBe('succeeded');

    writeFileSync(statusFile, status('running'));
    const [gone] = await backend.pollMany([{ handle, eventsFrom: 0 }]);
    expect(gone).toMatchObject({ state: 'lost', reason: `the runner (pid ${runner.pid}) is gone without a final status` });
  });
});
