// CANCEL_SCRIPT, the ssh and fleet backends' stop of an attempt, run by this machine's sh on
// attempt folders written here, with a `sleep` standing in for the runner whose pid status.json
// names: the stop request, the signal, and the end a killed runner could not write.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CANCEL_SCRIPT, STOP_KILLED_REASON } from '../../scripts/lib/remote/scripts.js';
import { STOP_REQUEST } from '../../scripts/lib/runner/attempt-spec.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'switchyard-cancel-script-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const runners: ChildProcess[] = [];
let folders = 0;
afterEach(() => {
  for (const r of runners.splice(0)) if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
});

/** A runner stand-in and its attempt folder, status.json as the runner writes it in `state`. */
function attempt(state: 'running' | 'succeeded') {
  const runner = spawn('sleep', ['60'], { stdio: 'ignore' });
  runners.push(runner);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => runner.on('exit', (_code, signal) => resolve(signal)));
  const d = path.join(root, String(folders++));
  mkdirSync(d);
  const status = { run_id: 'r', attempt: 1, state, reason: null, exit_code: state === 'running' ? null : 0, signal: null, pid: runner.pid, started_at: '2026-11-30T12:00:00.000Z', ended_at: null, restored_step: null, last_step: 4 };
  writeFileSync(path.join(d, 'status.json'), JSON.stringify(status, null, 2) + '\n');
  return { d, runner, exited, status };
}

const cancel = (d: string, signal: 'TERM' | 'KILL') => execFileSync('sh', ['-c', CANCEL_SCRIPT, 'sh', d, signal]);
const statusOf = (d: string) => JSON.parse(readFileSync(path.join(d, 'status.json'), 'utf8')) as Record<string, unknown>;

describe('CANCEL_SCRIPT', () => {
  it('kills the runner at once (make stop force=1) and ends its attempt cancelled, as the runner would have', async () => {
    const { d, exited, status } = attempt('running');
    cancel(d, 'KILL');
    expect(await exited).toBe('SIGKILL');
    expect(existsSync(path.join(d, STOP_REQUEST))).toBe(true);
    const after = statusOf(d);
    expect(after).toEqual({ ...status, state: 'cancelled', reason: STOP_KILLED_REASON, ended_at: after.ended_at });
    expect(Date.parse(String(after.ended_at))).not.toBeNaN();
    expect(readdirSync(d).sort()).toEqual(['status.json', STOP_REQUEST].sort()); // no temp file left
  });

  it('asks with TERM and leaves the end to the runner, which checkpoints and writes it', async () => {
    const { d, exited, status } = attempt('running');
    cancel(d, 'TERM');
    expect(await exited).toBe('SIGTERM');
    expect(statusOf(d)).toEqual(status);
  });

  it('signals no runner that already wrote its end: its pid may be another process\'s by now', async () => {
    const { d, runner, exited, status } = attempt('succeeded');
    cancel(d, 'KILL');
    runner.kill('SIGTERM'); // ends it by our signal only if the script sent none
    expect(await exited).toBe('SIGTERM');
    expect(statusOf(d)).toEqual(status);
    expect(existsSync(path.join(d, STOP_REQUEST))).toBe(true);
  });
});
