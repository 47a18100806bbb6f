// Preemption to recovery: the experiment of a running attempt is killed (as a spot VM's would be),
// and we time how long until the next attempt's experiment runs, on the laptop and on an ssh
// host (a real sshd in a network namespace). Baseline in the same run: starting the same
// experiment by hand. Target: at most 10 s (SkyPilot's managed jobs poll every 15 s and wait
// 60 s between relaunches; dstack calls an instance lost after 2 min). Runs as root.
// BENCH_MB (default none) puts that many MB of files in the experiment's folder, to see what a
// heavier experiment adds to a recovery.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox } from '../test/helpers/sandbox.js';
import { startTestHosts } from '../test/helpers/ssh-hosts.js';
import { median, sizeFromEnv } from './lib/measure.js';
import { bareStart, marksOf, setUpPreempt, until } from './lib/preempt.js';

const ROUNDS = 3;
const PAYLOAD_MB = sizeFromEnv('BENCH_MB', 0);
const TARGET_S = 10;
/** Where the experiment notes its starts, below its HOME: this machine's, or the host's own. */
const MARKS = 'sy-bench-preempt';

const marks = (home: string, run: string) => marksOf(home, MARKS, run);

/** One preemption: seconds from the kill to the next attempt's first line. */
async function preemptOnce(dir: string, home: string, args: string[], kill: (pid: string) => Promise<void>): Promise<number> {
  const child = spawn('make', ['-s', 'train', 'experiment=preempt', 'again=1', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MAKEFLAGS: '' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const run = await until('the run id', () => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(out)?.[1] ?? null);
  const [, pid] = await until('attempt 1', () => marks(home, run).find((m) => m[0] === '1') ?? null);
  const t0 = Date.now() / 1000;
  await kill(pid!);
  const [, , started] = await until('attempt 2', () => marks(home, run).find((m) => m[0] === '2') ?? null);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`make train exited ${code}:\n${out}`);
  return Number(started) - t0;
}

const sb = createSandbox();
const hosts = await startTestHosts(1, { prefix: 'sypre' });
try {
  setUpPreempt(sb, hosts, MARKS, undefined, PAYLOAD_MB);

  const local: number[] = [];
  const ssh: number[] = [];
  const bare: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    local.push(await preemptOnce(sb.dir, os.homedir(), [], async (pid) => void process.kill(Number(pid), 'SIGKILL')));
    ssh.push(await preemptOnce(sb.dir, hosts.hosts[0]!.home, ['backend=ssh', 'host=h1'], async (pid) => void (await hosts.execOn('h1', ['kill', '-9', pid]))));
    bare.push(bareStart(sb.dir));
  }
  const b = median(bare);
  const payload = PAYLOAD_MB ? `, ${PAYLOAD_MB} MB of files in the experiment` : '';
  console.log(`preemption → next attempt running (median of ${ROUNDS}; the experiment SIGKILLed${payload})`);
  console.log(`  starting it by hand (baseline)   ${b.toFixed(3)} s`);
  for (const [name, xs] of [['local', local], ['ssh', ssh]] as const) {
    const m = median(xs);
    console.log(`  ${name.padEnd(5)} ${m.toFixed(2)} s   (rounds ${xs.map((x) => x.toFixed(2)).join('/')})   target <= ${TARGET_S} s   ${m <= TARGET_S ? 'MET' : 'MISSED'}`);
    if (m > TARGET_S) process.exitCode = 1;
  }
} finally {
  await hosts.cleanup();
  sb.cleanup();
  rmSync(path.join(os.homedir(), MARKS), { recursive: true, force: true });
}
