// CANCEL_SCRIPT, the ssh and fleet backends' stop of an attempt, run by this machine's sh on
// attempt folders written here, with a `sleep` standing in for the runner whose pid status.json
// and live.json name: the stop request, the signal, the end a killed runner could not write, and
// no signal to a process that has the pid of a runner gone since (the host rebooted, say).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { procStatFields } from '../../scripts/lib/process-alive.js';
import { CANCEL_SCRIPT, STOP_KILLED_REASON } from '../../scripts/lib/remote/scripts.js';
import { LIVE_FILE, STOP_REQUEST } from '../../scripts/lib/runner/attempt-spec.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'switchyard-cancel-script-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const runners: ChildProcess[] = [];
let folders = 0;
afterEach(() => {
  for (const r of runners.splice(0)) if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
});

const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** live.json as the runner writes it, naming its process by pid, boot and start time. */
function writeLive(d: string, pid: number, identity: { boot_id: string; start_ticks: string }) {
  writeFileSync(path.join(d, LIVE_FILE), JSON.stringify({ events: 0, pid, ...identity, metrics: null, last_line: null }, null, 2) + '\n');
}

/** A runner stand-in and its attempt folder, status.json and live.json as the runner writes them in `state`. */
function attempt(state: 'running' | 'succeeded') {
  const runner = spawn('sleep', ['60'], { stdio: 'ignore' });
  runners.push(runner);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => runner.on('exit', (_code, signal) => resolve(signal)));
  const d = path.join(root, String(folders++));
  mkdirSync(d);
  const status = { run_id: 'r', attempt: 1, state, reason: null, exit_code: state === 'running' ? null : 0, signal: null, pid: runner.pid, started_at: '2026-11-30T12:00:00.000Z', ended_at: null, restored_step: null, last_step: 4 };
  writeFileSync(path.join(d, 'status.json'), JSON.stringify(status, null, 2) + '\n');
  writeLive(d, runner.pid!, { boot_id: bootId, start_ticks: procStatFields(runner.pid!)![19]! });
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
    expect(readdirSync(d).sort()).toEqual(['status.json', LIVE_FILE, STOP_REQUEST].sort()); // no temp file left
  });

  it('asks with TERM and leaves the end to the runner, which checkpoints and writes it', async () => {
    const { d, exited, status } = attempt('running');
    cancel(d, 'TERM');
    expect(await exited).toBe('SIGTERM');
    expect(statusOf(d)).toEqual(status);
  });

  it('signals the pid status.json names where live.json cannot name the process (a host without /proc)', async () => {
    const { d, exited, status } = attempt('running');
    writeFileSync(path.join(d, LIVE_FILE), JSON.stringify({ events: 0, pid: status.pid, metrics: null, last_line: null }, null, 2) + '\n');
    cancel(d, 'TERM');
    expect(await exited).toBe('SIGTERM');
  });

  it('signals no runner that already wrote its end: its pid may be another process\'s by now', async () => {
    const { d, runner, exited, status } = attempt('succeeded');
    cancel(d, 'KILL');
    runner.kill('SIGTERM'); // ends it by our signal only if the script sent none
    expect(await exited).toBe('SIGTERM');
    expect(statusOf(d)).toEqual(status);
    expect(existsSync(path.join(d, STOP_REQUEST))).toBe(true);
  });

  it('signals no process that has the pid of a runner gone without its end (a reboot, a kill): a stop never kills another program', async () => {
    // The host rebooted under a running attempt, or its runner was killed and its pid reused:
    // status.json still says it runs, and its pid is now another process's (here, our `sleep`).
    for (const gone of [{ boot_id: 'a-boot-before-this-one', start_ticks: '1' }, { boot_id: bootId, start_ticks: '1' }]) {
      for (const signal of ['TERM', 'KILL'] as const) {
        const { d, runner, exited, status } = attempt('running');
        writeLive(d, runner.pid!, gone);
        cancel(d, signal);
        runner.kill('SIGUSR2'); // ends it by our signal only if the script sent none
        expect(await exited).toBe('SIGUSR2');
        expect(existsSync(path.join(d, STOP_REQUEST))).toBe(true); // the poll finds it gone and stopped: cancelled
        // force=1 ends it as the runner would have; a plain stop leaves that to the poll
        if (signal === 'KILL') expect(statusOf(d)).toMatchObject({ state: 'cancelled', reason: STOP_KILLED_REASON });
        else expect(statusOf(d)).toEqual(status);
      }
    }
  });
});
