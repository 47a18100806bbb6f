// Failover with real parts: a run with `backends: [slurm, ssh, local]` starts on a real SLURM
// cluster (test/helpers/slurm.ts, its login node h1 an ssh host in a network namespace) under
// the agent. The cluster's controller is stopped and its job preempted (USR1 to the batch shell:
// the runner checkpoints and stops): the agent finds the cluster not answering and
// resumes the run on the ssh host h2 from the newest checkpoint in the store. The result equals
// an uninterrupted local run's.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type Sandbox } from '../helpers/sandbox.js';
import { startSlurmTestBed, type TestSlurm } from '../helpers/slurm.js';
import type { TestHosts } from '../helpers/ssh-hosts.js';
import { runIdIn, startAgent, stopAgent, storedRun, type AgentProcess } from '../helpers/agent.js';

let hosts: TestHosts;
let slurm: TestSlurm;
let sb: Sandbox;
let agent: AgentProcess | null = null;

beforeAll(async () => {
  ({ hosts, slurm, sb } = await startSlurmTestBed(2, 'syagent', "    lab: { login: 'h1', preemptible: true, lost_after_sec: 10 },"));
  const penguins = path.join(sb.dir, 'competitions/penguins');
  const fast = readFileSync(path.join(penguins, 'experiments/fast.yaml'), 'utf8');
  writeFileSync(path.join(penguins, 'experiments/failover.yaml'), fast.replace('EPOCHS: "1600"', 'EPOCHS: "4800"') + 'backends: [slurm, ssh, local]\n');
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'failover test bed']);
  for (const h of ['h1', 'h2']) {
    const r = sb.make(['bootstrap', `host=${h}`], { timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }
}, 240_000);

afterAll(async () => {
  if (agent) await stopAgent(agent);
  await slurm?.cleanup();
  await hosts?.cleanup();
  sb?.cleanup();
});

/**
 * The job's batch shell, which `exec`s the runner: the process SLURM signals with `B:`. Only
 * this cluster's: another test file's cluster beside it numbers its jobs from 1 too.
 */
function batchShellPids(job: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const env = readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
        return env.includes(`SLURM_JOB_ID=${job}`) && env.includes(`SLURM_CONF=${slurm.conf}`) && readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes('--spec');
      } catch {
        return false;
      }
    })
    .map(Number);
}

const commits = (id: string) => readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"ckpt.committed"') && l.includes(`"run_id":"${id}"`)).length;

describe('the agent fails a run over along its backends', () => {
  it('slurm preempted and its controller down: the run resumes on the ssh host from the newest checkpoint; output as uninterrupted', async () => {
    agent = await startAgent(sb);
    const r = sb.make(['train', 'experiment=penguins/failover', 'cluster=lab', 'host=h2'], { timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = runIdIn(r.stdout + r.stderr)!;
    await waitFor(() => commits(id) >= 2, 120_000, 'checkpoints from the cluster');
    const first = storedRun(sb, id)!.units[0]!.attempts[0]!;
    expect(first).toMatchObject({ backend: 'slurm', state: 'running' });
    // The controller goes first, then the node preempts the job: USR1 to its batch shell (the
    // runner, exec'd), as `--signal=B:USR1` does. The other order races: a scancel the controller
    // accepted but had not yet forwarded is lost with it, and the job runs to its end.
    await slurm.stopController();
    const shells = batchShellPids(String(first.handle!.job));
    expect(shells.length).toBe(1);
    process.kill(shells[0]!, 'SIGUSR1');
    await waitFor(() => storedRun(sb, id)?.units[0]?.attempts.at(-1)?.state === 'succeeded', 180_000, `the run to finish elsewhere (agent log: ${agent!.output()})`);
    const attempts = storedRun(sb, id)!.units[0]!.attempts;
    expect(attempts.map((a) => a.backend)).toEqual(['slurm', 'ssh']);
    expect(['preempted', 'lost']).toContain(attempts[0]!.state);
    expect(attempts[1]!.handle).toMatchObject({ host: 'h2' });
    // the newest checkpoint the store held when the cluster went away
    expect(attempts[1]!.restored_step).toBeGreaterThan(0);
    expect(agent.output()).toMatch(new RegExp(`${id} unit 0 moved from lab to ssh(:h2)?`));
    const status = sb.make(['status', `run=${id}`]);
    expect(status.stdout).toMatch(/2\s+ssh\s+h2\s+succeeded/);

    const local = sb.make(['train', 'experiment=penguins/failover', 'backend=local', 'again=1'], { timeoutMs: 120_000 });
    const ref = runIdIn(local.stdout + local.stderr)!;
    await waitFor(() => storedRun(sb, ref)?.units[0]?.attempts.at(-1)?.state === 'succeeded', 120_000, 'the reference run');
    const model = (run: string) => readFileSync(path.join(sb.dir, '.switchyard/store/runs', run, 'outputs/model.json'));
    expect(existsSync(path.join(sb.dir, '.switchyard/store/runs', id, 'outputs/model.json'))).toBe(true);
    expect(model(id).equals(model(ref))).toBe(true);
  }, 400_000);
});
