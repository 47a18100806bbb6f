// ATTEMPT_FILES_SH, the part of the ssh and SLURM polls that reads an attempt's files, run by
// this machine's sh on attempt folders written here: what each of its sections holds.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ATTEMPT_FILES_SH } from '../../scripts/lib/remote/scripts.js';

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

/** Writes an attempt folder of `files` (name to text, or [text, mtime in s]) and reads it as a poll does. */
function poll(files: Record<string, string | [string, number]>, from = 0) {
  const d = path.join(root, String(n++));
  mkdirSync(d);
  for (const [name, f] of Object.entries(files)) {
    const [text, mtime] = typeof f === 'string' ? [f, undefined] : f;
    writeFileSync(path.join(d, name), text);
    if (mtime !== undefined) utimesSync(path.join(d, name), mtime, mtime);
  }
  writeFileSync(tails, '');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const out = execFileSync('sh', ['-c', `d=$1 m=$2 from=$3\n${ATTEMPT_FILES_SH}`, 'sh', d, M, String(from)], { env }).toString();
  const [status, events, metrics, lastLine, rest] = out.split(M);
  expect(rest).toBe('');
  return { status, events, metrics, lastLine, tails: readFileSync(tails, 'utf8').split('\n').length - 1 };
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
