// SUBMIT_SCRIPT on a real sh and tmux (a private tmux socket folder): a host's attempts start
// with one tmux client for as many as fit in one of tmux's messages, each answered on its own
// line; an attempt tmux refuses gets its error after one retry while those after it in the same
// list still start; a second call starts nothing. A tmux on the PATH notes each call, then runs
// the real one.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SUBMIT_SCRIPT } from '../../scripts/lib/remote/scripts.js';

const SOCKET = 'switchyard';
let dir: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sy-tmux-submit-'));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const real = spawnSync('sh', ['-c', 'command -v tmux']).stdout.toString().trim();
  writeFileSync(path.join(bin, 'tmux'), `#!/bin/sh\nprintf '%s\\n' "$*" >> "${dir}/tmux.calls"\nexec ${real} "$@"\n`);
  chmodSync(path.join(bin, 'tmux'), 0o755);
  mkdirSync(path.join(dir, 'tmux'), { mode: 0o700 });
  env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, TMUX_TMPDIR: path.join(dir, 'tmux'), TMUX: '' };
});

afterEach(() => {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server'], { env });
  rmSync(dir, { recursive: true, force: true });
});

/** Attempt n (default 1) of shard i: its five words (the session sleeps in `dir`, `pad` long) and its spec line. */
function attempt(i: number, pad = 200, n = 1): { args: string[]; spec: string; folder: string; session: string } {
  const folder = path.join(dir, 'scratch/run/shards', String(i), `attempts/${n}`);
  const session = `sy-run-s${i}-${n}`;
  const cmd = `cd '${dir}' && exec sleep 60 # ${'x'.repeat(pad)}`;
  return { args: [folder, session, `${folder}/attempt.json`, `sy-run-s${i}-`, cmd], spec: JSON.stringify({ shard: i }), folder, session };
}

function submit(attempts: ReturnType<typeof attempt>[]): string[] {
  const r = spawnSync('sh', ['-c', SUBMIT_SCRIPT, 'sh', SOCKET, ...attempts.flatMap((a) => a.args)], {
    input: attempts.map((a) => `${a.spec}\n`).join(''),
    env,
  });
  expect(r.status, r.stderr.toString()).toBe(0);
  return r.stdout.toString().split('\n').slice(0, -1);
}

const sessions = () => spawnSync('tmux', ['-L', SOCKET, 'list-sessions', '-F', '#{session_name}'], { env }).stdout.toString().split('\n').filter(Boolean).sort();
const clientsStarting = () => readFileSync(path.join(dir, 'tmux.calls'), 'utf8').split('\n').filter((l) => l.includes('new-session')).length;

describe('SUBMIT_SCRIPT', () => {
  it('starts 120 attempts with a tmux client per message-full of them, and none again on a second call', () => {
    const all = Array.from({ length: 120 }, (_, i) => attempt(i));
    expect(submit(all)).toEqual(all.map(() => '0 '));
    expect(sessions()).toEqual(all.map((a) => a.session).sort());
    for (const a of all) expect(readFileSync(`${a.folder}/attempt.json`, 'utf8')).toBe(`${a.spec}\n`);
    // ~290 bytes of arguments an attempt, ~12,000 a client: a handful of clients, not 120
    expect(clientsStarting()).toBeGreaterThan(1);
    expect(clientsStarting()).toBeLessThanOrEqual(4);
    // the sessions' `cd … && exec …` runs in /bin/sh, whatever the login shell
    expect(spawnSync('tmux', ['-L', SOCKET, 'show-options', '-g', 'default-shell'], { env }).stdout.toString().trim()).toBe('default-shell /bin/sh');

    expect(submit(all)).toEqual(all.map(() => '10 '));
    expect(clientsStarting()).toBeLessThanOrEqual(4);
  });

  it('answers an attempt tmux refuses with its error after one retry, and still starts those after it', () => {
    // a command past what one tmux message holds: tmux refuses it alone, whatever shares its list
    const [first, refused, after] = [attempt(1), attempt(2, 17_000), attempt(3)];
    expect(submit([first!, refused!, after!])).toEqual(['0 ', '1 command too long', '0 ']);
    expect(sessions()).toEqual([first!.session, after!.session]);
    expect(readFileSync(path.join(dir, 'tmux.calls'), 'utf8').split('\n').filter((l) => l.includes(refused!.session))).toHaveLength(2);
  });

  it('refuses a later attempt of a unit whose earlier one it started in the same call, or found running', () => {
    const [first, second, other] = [attempt(1), attempt(1, 200, 2), attempt(2)];
    expect(submit([first!, second!, other!])).toEqual(['0 ', `12 ${first!.session}`, '0 ']);
    expect(submit([second!])).toEqual([`12 ${first!.session}`]);
    expect(sessions()).toEqual([first!.session, other!.session]);
  });

  it('refuses an attempt whose spec cannot be written, starting the others', () => {
    const [blocked, fine] = [attempt(1), attempt(2)];
    mkdirSync(path.dirname(blocked!.folder), { recursive: true });
    writeFileSync(blocked!.folder, 'a file where the attempt folder goes\n');
    expect(submit([blocked!, fine!])).toEqual(['11 ', '0 ']);
    expect(sessions()).toEqual([fine!.session]);
    expect(existsSync(`${fine!.folder}/attempt.json`)).toBe(true);
  });
});
