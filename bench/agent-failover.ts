// Preemption to recovery under the agent: runs are handed to `make agent` (make train returns
// once it has submitted), the experiment of a running attempt is killed (as a spot VM's would
// be), and we time how long until the next attempt's experiment runs, with nobody following the
// run but the agent: on the laptop, on an ssh host and on a SLURM cluster (real sshd in a
// network namespace; real slurmctld and slurmd inside it). Baseline in the same run: starting
// the same experiment by hand. Target: at most 10 s each (as bench/preemption.ts for the
// foreground; SkyPilot's managed jobs poll every 15 s and wait 60 s between relaunches).
// Runs as root.
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox } from '../test/helpers/sandbox.js';
import { startSlurm } from '../test/helpers/slurm.js';
import { startTestHosts } from '../test/helpers/ssh-hosts.js';
import { startAgent, stopAgent } from '../test/helpers/agent.js';
import { median } from './lib/measure.js';
import { bareStart, marksOf, setUpPreempt, until } from './lib/preempt.js';

const ROUNDS = 3;
const TARGET_S = 10;
/** Where the experiment notes its starts, below its HOME: this machine's, or the host's own. */
const MARKS = 'sy-bench-agent';

const marks = (home: string, run: string) => marksOf(home, MARKS, run);

const sb = createSandbox();
const hosts = await startTestHosts(1, { prefix: 'sybag' });
const enter = hosts.enter('h1');
const slurm = enter ? await startSlurm({ enter }) : null;
let agent: Awaited<ReturnType<typeof startAgent>> | null = null;

/** One preemption under the agent: seconds from the kill to the next attempt's first line. */
async function preemptOnce(home: string, args: string[], kill: (pid: string) => Promise<void>): Promise<number> {
  const r = sb.make(['train', 'experiment=preempt', 'again=1', ...args], { timeoutMs: 120_000 });
  const run = /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(r.stdout + r.stderr)?.[1];
  if (r.code !== 0 || !run) throw new Error(`make train exited ${r.code}:\n${r.stdout}${r.stderr}`);
  const [, pid] = await until('attempt 1', () => marks(home, run).find((m) => m[0] === '1') ?? null);
  const t0 = Date.now() / 1000;
  await kill(pid!);
  const [, , started] = await until('attempt 2', () => marks(home, run).find((m) => m[0] === '2') ?? null);
  return Number(started) - t0;
}

try {
  setUpPreempt(sb, hosts, MARKS, slurm ? "    lab: { login: 'h1', preemptible: true }," : undefined);
  agent = await startAgent(sb);

  const killOnHost = async (pid: string) => void (await hosts.execOn('h1', ['kill', '-9', pid]));
  const routes: [string, string, string[], (pid: string) => Promise<void>][] = [
    ['local', os.homedir(), [], async (pid) => void process.kill(Number(pid), 'SIGKILL')],
    ['ssh', hosts.hosts[0]!.home, ['backend=ssh', 'host=h1'], killOnHost],
  ];
  if (slurm) routes.push(['slurm', hosts.hosts[0]!.home, ['backend=slurm', 'cluster=lab'], killOnHost]);
  const times = new Map<string, number[]>(routes.map(([name]) => [name, []]));
  const bare: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, home, args, kill] of routes) times.get(name)!.push(await preemptOnce(home, args, kill));
    bare.push(bareStart(sb.dir));
  }
  const b = median(bare);
  console.log(`preemption → next attempt running under the agent (median of ${ROUNDS}; the experiment SIGKILLed)`);
  console.log(`  starting it by hand (baseline)   ${b.toFixed(3)} s`);
  if (!slurm) console.log('  slurm: skipped (no network namespaces here)');
  for (const [name, xs] of times) {
    const m = median(xs);
    console.log(`  ${name.padEnd(5)} ${m.toFixed(2)} s   (rounds ${xs.map((x) => x.toFixed(2)).join('/')})   target <= ${TARGET_S} s   ${m <= TARGET_S ? 'MET' : 'MISSED'}`);
    if (m > TARGET_S) process.exitCode = 1;
  }
} finally {
  if (agent) await stopAgent(agent);
  await slurm?.cleanup();
  await hosts.cleanup();
  sb.cleanup();
  rmSync(path.join(os.homedir(), MARKS), { recursive: true, force: true });
}
