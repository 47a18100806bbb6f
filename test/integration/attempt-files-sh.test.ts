// ATTEMPT_FILES_SH, the part of the ssh and SLURM polls that reads an attempt's files, and the
// ssh poll around it, run by this machine's sh on attempt folders written here: what each of
// their sections holds, and how many processes they start for it.
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ATTEMPT_FILES_SH, LIVE_READ_SH, POLL_SCRIPT, STOP_KILLED_REASON } from '../../scripts/lib/remote/scripts.js';
import { parsePoll } from '../../scripts/lib/remote/launch.js';
import { STOP_REQUEST } from '../../scripts/lib/runner/attempt-spec.js';
import { SLURM_POLL_SCRIPT, underOneFolder } from '../../scripts/lib/slurm/scripts.js';
import { AttemptLive } from '../../scripts/lib/runner/attempt-live.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'switchyard-attempt-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const M = '|M|';
let n = 0;
// A tail of our own ahead on the PATH counts the processes a poll starts, then runs the real one.
const bin = path.join(root, 'bin');
const tails = path.join(root, 'tails');
const realTail = execFileSync('sh', ['-c', 'command -v tail'], { encoding: 'utf8' }).trim();
mkdirSync(bin);
writeFileSync(path.join(bin, 'tail'), `#!/bin/sh\necho started >> '${tails}'\nexec '${realTail}' "$@"\n`);
chmodSync(path.join(bin, 'tail'), 0o755);

// a sacct that answers $SACCT, and a tmux that lists the sessions in $SESSIONS, counting its calls
writeFileSync(path.join(bin, 'sacct'), `#!/bin/sh\nprintf '%s\\n' "$SACCT"\n`);
chmodSync(path.join(bin, 'sacct'), 0o755);
const tmuxCalls = path.join(root, 'tmux-calls');
writeFileSync(path.join(bin, 'tmux'), `#!/bin/sh\necho called >> '${tmuxCalls}'\nprintf '%s\\n' $SESSIONS\n`);
chmodSync(path.join(bin, 'tmux'), 0o755);
const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
const count = (file: string) => readFileSync(file, 'utf8').split('\n').length - 1;

/** An attempt folder of `files` (name to text, or [text, mtime in s]). */
function folder(files: Record<string, string | [string, number]>): string {
  const d = path.join(root, String(n++));
  mkdirSync(d);
  for (const [name, f] of Object.entries(files)) {
    const [text, mtime] = typeof f === 'string' ? [f, undefined] : f;
    writeFileSync(path.join(d, name), text);
    if (mtime !== undefined) utimesSync(path.join(d, name), mtime, mtime);
  }
  return d;
}

/** Reads an attempt folder as a poll does; `fresh`: its runner was seen running. */
function read(d: string, from = 0, fresh = false) {
  writeFileSync(tails, '');
  const script = `nl='\n'\nd=$1 m=$2 from=$3 fresh=$4\n${LIVE_READ_SH}\n${ATTEMPT_FILES_SH}`;
  const out = execFileSync('sh', ['-c', script, 'sh', d, M, String(from), fresh ? '1' : ''], { env }).toString();
  const [status, live, events, metrics, lastLine, rest] = out.split(M);
  expect(rest).toBe('');
  return { status, live, events, metrics, lastLine, tails: count(tails) };
}

/** Writes an attempt folder of `files` and reads it as a poll does, without a live view. */
function poll(files: Record<string, string | [string, number]>, from = 0) {
  const { live, ...rest } = read(folder(files), from);
  expect(live).toBe('');
  return rest;
}

describe('an attempt folder read by the poll', () => {
  it('gives status.json, the events not yet read, the newest metrics line', () => {
    const r = poll({ 'status.json': '{"state":"running"}', 'events.jsonl': '{"e":1}\n{"e":2}\n{"e":3}\n', 'metrics.jsonl': '{"step":1}\n{"step":2}\n' }, 1);
    expect(r).toEqual({ status: '{"state":"running"}\n', events: '{"e":2}\n{"e":3}\n', metrics: '{"step":2}\n', lastLine: '', tails: 2 });
    expect(poll({ 'events.jsonl': '{"e":1}\n', 'metrics.jsonl': '{"step":1}\n', 'stdout.log': 'epoch 1\n' }).tails).toBe(3);
  });

  it('gives nothing for files not there yet or empty, and starts no process for them', () => {
    expect(poll({})).toEqual({ status: '', events: '', metrics: '', lastLine: '', tails: 0 });
    const empty = { 'status.json': '', 'events.jsonl': '', 'metrics.jsonl': '', 'stdout.log': '', 'stderr.log': '' };
    expect(poll(empty)).toEqual({ status: '', events: '', metrics: '', lastLine: '', tails: 0 });
  });

  it('gives the last line of the log that is not empty or spaces alone', () => {
    expect(poll({ 'stdout.log': 'epoch 1\nepoch 2\n  \n\n \n' }).lastLine).toBe('epoch 2\n');
    expect(poll({ 'stdout.log': 'epoch 1\nepoch 2' }).lastLine).toBe('epoch 2\n'); // no newline at its end
    expect(poll({ 'stdout.log': ' \tindented  \n' }).lastLine).toBe(' \tindented  \n'); // a tab is not a space
    expect(poll({ 'stdout.log': '  \n \n\n' }).lastLine).toBe('');
    expect(poll({ 'stdout.log': 'a *[!x] $HOME "q" \\n\n' }).lastLine).toBe('a *[!x] $HOME "q" \\n\n'); // as written, no expansion
  });

  it('looks only at the log\'s last 4 KiB: a longer last line comes cut, an older line is not reached', () => {
    expect(poll({ 'stdout.log': `old line\n${'x'.repeat(5000)}\n` }).lastLine).toBe(`${'x'.repeat(4095)}\n`);
    expect(poll({ 'stdout.log': `old line\n${' \n'.repeat(3000)}` }).lastLine).toBe('');
  });

  it('reads the newer of stdout.log and stderr.log, stderr.log when they are as new', () => {
    expect(poll({ 'stdout.log': ['from stdout\n', 2000], 'stderr.log': ['from stderr\n', 1000] }).lastLine).toBe('from stdout\n');
    expect(poll({ 'stdout.log': ['from stdout\n', 1000], 'stderr.log': ['from stderr\n', 2000] }).lastLine).toBe('from stderr\n');
    expect(poll({ 'stdout.log': ['from stdout\n', 1000], 'stderr.log': ['from stderr\n', 1000] }).lastLine).toBe('from stderr\n');
    expect(poll({ 'stderr.log': 'only stderr\n' }).lastLine).toBe('only stderr\n');
  });
});

/** A running attempt's folder with the live view its runner keeps, as AttemptLive writes it. */
function runningFolder(events: number, files: Record<string, string> = {}) {
  const d = folder({ 'status.json': STATUS_RUNNING, 'events.jsonl': '{"type":"notice","line":"x"}\n'.repeat(events), 'metrics.jsonl': '{"step":1}\n{"step":2}\n', 'stdout.log': 'epoch 1\n', ...files });
  return { d, live: AttemptLive.begin(d) };
}
const STATUS_RUNNING = JSON.stringify({ run_id: 'r', state: 'running', pid: 1 }, null, 2) + '\n';
const viewOf = (d: string) => JSON.parse(readFileSync(path.join(d, 'live.json'), 'utf8'));

describe('a running attempt read through its live view', () => {
  it('shows the view for the metrics and the log, and reads no events while it counts no more than were read: no process', () => {
    const { d, live } = runningFolder(3);
    live.output('stderr', Buffer.from('warming up\n  \n'));
    live.refresh();
    const r = read(d, 3, true);
    expect(r).toMatchObject({ status: STATUS_RUNNING, events: '', metrics: '', lastLine: '', tails: 0 });
    expect(JSON.parse(r.live!)).toMatchObject({ events: 3, pid: process.pid, metrics: '{"step":2}', last_line: 'warming up' });
  });

  it('reads the events past those read once the view counts more', () => {
    const { d, live } = runningFolder(2);
    appendFileSync(path.join(d, 'events.jsonl'), '{"type":"ckpt.pruned","step":1}\n');
    live.event();
    expect(read(d, 2, true)).toMatchObject({ events: '{"type":"ckpt.pruned","step":1}\n', tails: 1 });
  });

  it('reads the events whenever the file holds any where its runner is not seen (a SLURM node), the view still standing in for the rest', () => {
    const { d } = runningFolder(2);
    expect(read(d, 2, false)).toMatchObject({ events: '', metrics: '', lastLine: '', tails: 1 });
  });

  it('reads the files, not the view, once status.json says how the attempt ended', () => {
    const { d } = runningFolder(1, { 'status.json': JSON.stringify({ state: 'succeeded' }, null, 2) + '\n' });
    expect(read(d, 0, true)).toMatchObject({ live: '', events: '{"type":"notice","line":"x"}\n', metrics: '{"step":2}\n', lastLine: 'epoch 1\n', tails: 3 });
  });

  it('stays small for the shell that reads it a byte at a time: a long metrics line is read from its file, a long last line cut', () => {
    const long = JSON.stringify({ step: 3, per_class: 'x'.repeat(3000) });
    const { d, live } = runningFolder(0, { 'metrics.jsonl': `{"step":2}\n${long}\n` });
    live.output('stdout', Buffer.from(`${'y'.repeat(600)}\n`));
    live.refresh();
    expect(viewOf(d).metrics).toBeUndefined();
    expect(viewOf(d).last_line).toBe('y'.repeat(512));
    expect(read(d, 0, true)).toMatchObject({ metrics: `${long}\n`, lastLine: '', tails: 1 });
    appendFileSync(path.join(d, 'metrics.jsonl'), '{"step":4}\n{"step":5,"half');
    live.refresh();
    expect(viewOf(d).metrics).toBe('{"step":4}'); // the newest line written whole
  });

  it('is removed, not left stale, once its runner cannot write it (a full disk): the poll reads the files', () => {
    const { d, live } = runningFolder(1);
    mkdirSync(path.join(d, 'live.json.tmp')); // each write of it now fails
    appendFileSync(path.join(d, 'events.jsonl'), '{"type":"ckpt.pruned","step":1}\n');
    live.event();
    expect(existsSync(path.join(d, 'live.json'))).toBe(false);
    expect(read(d, 1, true)).toMatchObject({ live: '', events: '{"type":"ckpt.pruned","step":1}\n', tails: 3 });
    live.refresh(); // and stays so
    expect(existsSync(path.join(d, 'live.json'))).toBe(false);
  });

  it('finds the last line across chunks as they come, and within a chunk larger than the log window', () => {
    const { d, live } = runningFolder(0);
    for (const chunk of ['epoch 7 ', 'step 10', '0\n  \n', '']) live.output('stdout', Buffer.from(chunk));
    live.refresh();
    expect(viewOf(d).last_line).toBe('epoch 7 step 100');
    live.output('stderr', Buffer.from(`warning: slow\n${'z'.repeat(5000)}\nlast\n`));
    live.refresh();
    expect(viewOf(d).last_line).toBe('last');
    live.output('stderr', Buffer.from(' \n'.repeat(3000))); // spaces alone, past the window
    live.refresh();
    expect(viewOf(d).last_line).toBeNull();
  });

  it('takes a view without a count of events for none', () => {
    const d = folder({ 'status.json': STATUS_RUNNING, 'live.json': '{\n  "events": "3",\n  "pid": 1\n}\n', 'stdout.log': 'epoch 1\n' });
    expect(read(d, 0, true)).toMatchObject({ live: '', lastLine: 'epoch 1\n', tails: 1 });
  });

  it('counts the events a rerun continues, and the lines of its logs so far', () => {
    const { d } = runningFolder(5, { 'stdout.log': ['older', 'newest line\n', ''].join('\n') });
    expect(viewOf(d)).toMatchObject({ events: 5, last_line: 'newest line', metrics: '{"step":2}' });
  });
});

describe('the ssh poll', () => {
  /** POLL_SCRIPT over attempts (folder, session, events read) with the tmux sessions `sessions`. */
  function sshPoll(attempts: [string, string, number][], sessions: string[] = []) {
    writeFileSync(tails, '');
    writeFileSync(tmuxCalls, '');
    const out = execFileSync('sh', ['-c', POLL_SCRIPT, 'sh', M, 'sock', ...attempts.flat().map(String)], { env: { ...env, SESSIONS: sessions.join(' ') } }).toString();
    const sections = out.split(M);
    expect(sections.length).toBe(attempts.length * 6 + 1);
    return { alive: attempts.map((_, i) => sections[i * 6]), live: attempts.map((_, i) => sections[i * 6 + 2]), tails: count(tails), tmux: count(tmuxCalls) };
  }

  it('sees a runner running from /proc and the process its view names: no tmux, no tail', () => {
    const { d } = runningFolder(1);
    expect(sshPoll([[d, 'sy-a', 1]])).toMatchObject({ alive: ['alive'], tails: 0, tmux: 0 });
  });

  it('takes a pid now another process\'s, or of another boot, for none: tmux says, and the files are read', () => {
    const { d } = runningFolder(1);
    const view = viewOf(d);
    for (const other of [{ start_ticks: String(Number(view.start_ticks) + 1) }, { boot_id: 'another-boot' }]) {
      writeFileSync(path.join(d, 'live.json'), JSON.stringify({ ...view, ...other }, null, 2) + '\n');
      const alive = sshPoll([[d, 'sy-a', 1]], ['sy-a']);
      expect(alive).toMatchObject({ alive: ['alive'], live: [''], tails: 3, tmux: 1 });
      expect(sshPoll([[d, 'sy-a', 1]], ['sy-b'])).toMatchObject({ alive: ['gone'], live: [''], tmux: 1 });
    }
  });

  it('lists the tmux sessions once, for the first attempt that needs it', () => {
    const running = runningFolder(0).d;
    const starting = folder({});
    const dead = folder({ 'status.json': STATUS_RUNNING });
    const r = sshPoll([[running, 'sy-a', 0], [starting, 'sy-b', 0], [dead, 'sy-c', 0], [running, 'sy-a', 0]], ['sy-b']);
    expect(r).toMatchObject({ alive: ['alive', 'alive', 'gone', 'alive'], tmux: 1 });
  });
});

describe('the ssh poll of a stopped attempt', () => {
  /** status.json as the runner writes it while the attempt runs */
  const running = JSON.stringify({ run_id: 'r', attempt: 1, state: 'running', reason: null, exit_code: null, signal: null, pid: 1, started_at: '2026-11-30T12:00:00.000Z', ended_at: null, restored_step: 3, last_step: null }, null, 2) + '\n';
  const pollOf = (d: string, sessions: string[] = []) => {
    const out = execFileSync('sh', ['-c', POLL_SCRIPT, 'sh', M, 'sock', d, 'sy-a', '0'], { env: { ...env, SESSIONS: sessions.join(' ') } }).toString();
    return parsePoll(out, M, 1)[0]!;
  };

  it('takes a runner gone without an end after a stop request (make stop force=1 killed it) as cancelled, not lost', () => {
    const d = folder({ 'status.json': running, [STOP_REQUEST]: '' });
    const polled = pollOf(d);
    expect(polled).toMatchObject({ alive: false, status: { state: 'cancelled', reason: STOP_KILLED_REASON, pid: 1, restored_step: 3 } });
    expect(Date.parse(polled.status!.ended_at!)).not.toBeNaN();
    // written whole as the runner writes it: the folder holds the status and nothing left over
    expect(JSON.parse(readFileSync(path.join(d, 'status.json'), 'utf8'))).toEqual(polled.status);
    expect(readdirSync(d).sort()).toEqual(['status.json', STOP_REQUEST].sort());
  });

  it('leaves a status alone while the runner lives, once it has ended, and when no stop was asked', () => {
    const alive = folder({ 'status.json': running, [STOP_REQUEST]: '' });
    expect(pollOf(alive, ['sy-a'])).toMatchObject({ alive: true, status: { state: 'running' } });
    const ended = JSON.stringify({ ...JSON.parse(running), state: 'preempted', reason: 'SIGTERM' }, null, 2) + '\n';
    expect(pollOf(folder({ 'status.json': ended, [STOP_REQUEST]: '' })).status).toMatchObject({ state: 'preempted', reason: 'SIGTERM' });
    const lost = folder({ 'status.json': running });
    expect(pollOf(lost)).toMatchObject({ alive: false, status: { state: 'running' } });
    expect(readFileSync(path.join(lost, 'status.json'), 'utf8')).toBe(running);
  });
});

describe('the SLURM poll', () => {
  /** SLURM_POLL_SCRIPT over attempts (folder, events read, job id), sacct answering `sacct` lines. */
  function slurmPoll(attempts: [string, number, string][], sacct: string[], mode = 'auto') {
    writeFileSync(tails, '');
    const { base, rel } = underOneFolder(attempts.map((a) => a[0])); // as pollMany gives them
    const args = [M, mode, attempts.map((a) => a[2]).join(','), base, ...attempts.flatMap((a, i) => [rel[i]!, String(a[1]), a[2]])];
    const out = execFileSync('sh', ['-c', SLURM_POLL_SCRIPT, 'sh', ...args], { env: { ...env, SACCT: sacct.join('\n') } }).toString();
    const sections = out.split(M).slice(1);
    expect(sections.length).toBe(attempts.length * 6 + 1);
    return { events: attempts.map((_, i) => sections[i * 6 + 3]), tails: count(tails) };
  }

  it('trusts a live view\'s count of events while sacct says its job runs, and reads the file once it has ended', () => {
    const a = runningFolder(2).d;
    const b = runningFolder(2).d;
    const running = slurmPoll([[a, 2, '17'], [b, 2, '7_1']], ['17|RUNNING|0:0|0|00:01:00|n1|None', '7_1|RUNNING|0:0|0|00:01:00|n2|None']);
    expect(running).toEqual({ events: ['', ''], tails: 0 });
    // job 7_1 failed (its node died): whatever its view says, its events come from the file
    const failed = slurmPoll([[a, 2, '17'], [b, 1, '7_1']], ['17|RUNNING|0:0|0|00:01:00|n1|None', '7_1|NODE_FAIL|0:0|0|00:01:00|n2|None']);
    expect(failed.events).toEqual(['', '{"type":"notice","line":"x"}\n']);
    expect(failed.tails).toBe(1);
    // a job whose id only ends like a running one's is not taken for it; nor is any under squeue
    expect(slurmPoll([[b, 2, '7']], ['17|RUNNING|0:0|0|00:01:00|n1|None']).tails).toBe(1);
    expect(slurmPoll([[a, 2, '17']], [], 'squeue').tails).toBe(1);
  });
});
