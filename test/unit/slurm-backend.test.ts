// The SLURM backend's side of its login node, with a scripted login node: what it asks (one
// scheduler query per poll, the fallback to squeue found once), what it makes of the answers,
// and how it submits and stops. The scripts themselves run against a real cluster in
// test/integration/slurm.test.ts.
import { describe, expect, it } from 'vitest';
import { SlurmBackend } from '../../scripts/lib/backends/slurm.js';
import { ClusterSchema } from '../../scripts/lib/config/cluster-config.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import type { LoginNode, ShResult } from '../../scripts/lib/slurm/login-node.js';
import type { JobPaths } from '../../scripts/lib/slurm/render-sbatch.js';
import { SLURM_CANCEL_SCRIPT, SLURM_KILL_SCRIPT, SLURM_POLL_SCRIPT, SLURM_SUBMIT_SCRIPT } from '../../scripts/lib/slurm/scripts.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { testAttemptSpec } from '../helpers/runner-process.js';

const paths: JobPaths = { node: 'sw/runtime/node', runner: 'sw/runtime/r.mjs', repo: 'sw/repo', work: (u) => `sw/scratch/${u}`, logs: (r) => `sw/scratch/${r}/slurm` };

class ScriptedLogin implements LoginNode {
  readonly name = 'login1';
  readonly workersReachStore = true;
  calls: { script: string; args: readonly string[]; stdin?: string }[] = [];
  constructor(private readonly answer: (script: string, args: readonly string[]) => ShResult) {}
  async sh(script: string, args: readonly string[], opts: { stdin?: string } = {}): Promise<ShResult> {
    this.calls.push({ script, args, stdin: opts.stdin });
    return this.answer(script, args);
  }
  async prepare() {
    return { detail: 'ready', paths };
  }
  workerSpec(spec: AttemptSpec) {
    return spec;
  }
  async pull() {}
  async pushCheckpoints() {}
}

const handle = (job: string, dir = `sw/scratch/r/attempts/1`) => ({ backend: 'slurm' as const, cluster: 'hpc', job, unit: 'r', attempt: 1, dir, submitted_at: new Date().toISOString(), grace_sec: 60 });

/** A poll's output: the scheduler's part, then each attempt's five sections. */
function pollOutput(args: readonly string[], head: string, attempts: string[][] = []): ShResult {
  const m = args[0]!;
  const count = (args.length - 3) / 3;
  const body = Array.from({ length: count }, (_, i) => ['gone', ...(attempts[i] ?? ['', '', '', '', ''])].map((s) => s + m).join('')).join('');
  return { code: 0, stdout: `${head}${m}${body}`, stderr: '' };
}

describe('SlurmBackend', () => {
  it('polls every job in one call; where sacct says accounting is off, squeue from the next poll on', async () => {
    const squeue = JSON.stringify({ jobs: [{ job_id: 7, array_job_id: 0, array_task_id: null, job_state: 'PENDING', state_reason: 'Priority', exit_code: 0, restart_cnt: 0 }, { job_id: 9, array_job_id: 8, array_task_id: 1, job_state: 'RUNNING', state_reason: 'None', exit_code: 0, restart_cnt: 0 }] });
    const login = new ScriptedLogin((script, args) => {
      expect(script).toBe(SLURM_POLL_SCRIPT);
      return pollOutput(args, args[1] === 'auto' ? `sacct-error Slurm accounting storage is disabled\nsqueue\n${squeue}` : `squeue\n${squeue}`, [['', '', '', '', ''], [JSON.stringify({ state: 'running' }), '', '{"type":"restored","step":3}\n', '{"step":4}\n', 'epoch 4\n']]);
    });
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const reqs = [{ handle: handle('7'), eventsFrom: 0 }, { handle: handle('8_1', 'sw/scratch/r/shards/1/attempts/1'), eventsFrom: 0 }];
    const first = await backend.pollMany(reqs);
    expect(first.map((r) => [r.state, r.reason])).toEqual([['pending', 'queued behind jobs of higher priority (Priority)'], ['running', null]]);
    expect(first[1]).toMatchObject({ events: [{ type: 'restored', step: 3 }], metrics: { step: 4 }, last_line: 'epoch 4' });
    await backend.pollMany(reqs);
    expect(login.calls.map((c) => c.args.slice(1, 3))).toEqual([['auto', '7,8_1'], ['squeue', '7,8_1']]);
  });

  it('a job SLURM requeued past max_requeues is cancelled and ends preempted, so the attempt budget bounds it', async () => {
    const squeue = (restarts: number) => JSON.stringify({ jobs: [{ job_id: 7, array_job_id: 0, array_task_id: null, job_state: 'RUNNING', state_reason: 'None', exit_code: 0, restart_cnt: restarts }] });
    let restarts = 2;
    const login = new ScriptedLogin((script, args) => (script === SLURM_POLL_SCRIPT ? pollOutput(args, `squeue\n${squeue(restarts)}`) : { code: 0, stdout: '', stderr: '' }));
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({ max_requeues: 2 }), login });
    const [within] = await backend.pollMany([{ handle: handle('7'), eventsFrom: 0 }]);
    expect(within!.state).toBe('running');
    restarts = 3;
    const [past] = await backend.pollMany([{ handle: handle('7'), eventsFrom: 0 }]);
    expect(past).toMatchObject({ state: 'preempted', reason: 'requeued by SLURM 3 times, past clusters.hpc.max_requeues (2): job 7 cancelled' });
    expect(login.calls.filter((c) => c.script === SLURM_KILL_SCRIPT).map((c) => c.args)).toEqual([['7']]);
  });

  it('a cluster that does not answer: every job unanswered, and the next poll waits (backoff) without asking', async () => {
    const login = new ScriptedLogin((_s, args) => pollOutput(args, 'sacct-error sacct: error: Unable to connect\nsqueue\nsqueue: error: Unable to contact slurm controller (connect failure)'));
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const [a] = await backend.pollMany([{ handle: handle('7'), eventsFrom: 0 }]);
    expect(a).toMatchObject({ unanswered: true, reason: 'slurm hpc: squeue: squeue: error: Unable to contact slurm controller (connect failure)' });
    const [b] = await backend.pollMany([{ handle: handle('7'), eventsFrom: 0 }]);
    expect(b!.unanswered).toBe(true);
    expect(login.calls).toHaveLength(1);
  });

  it('submits several units as one array in one call, the specs on its stdin; handles name their tasks', async () => {
    const login = new ScriptedLogin((script) => {
      expect(script).toBe(SLURM_SUBMIT_SCRIPT);
      return { code: 0, stdout: '4711\n', stderr: '' };
    });
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const units = [0, 1].map((i) => testAttemptSpec({ run_id: 'r', unit_id: `r/shards/${i}`, shard_index: i, shard_count: 2, command: 'true', store: 'file://x' }));
    const handles = await backend.submitMany(units.map((spec) => ({ spec, slot: 'hpc' })));
    expect(handles.map((h) => [h.job, h.dir])).toEqual([['4711_0', 'sw/scratch/r/shards/0/attempts/1'], ['4711_1', 'sw/scratch/r/shards/1/attempts/1']]);
    expect(login.calls).toHaveLength(1);
    const { args, stdin = '' } = login.calls[0]!;
    const name = args[0]!.split('/').at(-1)!.replace('.sbatch', '');
    // the logs folder, the array's job name (its submission's), the spec's name, then each unit's folder
    expect(args.slice(2)).toEqual(['sw/scratch/r/slurm', name, 'attempt.json', 'sw/scratch/r/shards/0/attempts/1', 'sw/scratch/r/shards/1/attempts/1']);
    const lines = stdin.split('\n');
    expect(lines.slice(0, 2).map((l) => JSON.parse(l))).toEqual(units);
    expect(lines.slice(2).join('\n')).toMatch(/^#!\/bin\/bash\n#SBATCH --job-name=sy-r-/);
  });

  it('sbatch refusing is one line', async () => {
    const login = new ScriptedLogin(() => ({ code: 12, stdout: '', stderr: 'sbatch: error: Batch job submission failed: Invalid partition name specified\n' }));
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({ partition: 'nosuch' }), login });
    const submit = backend.submitMany([{ spec: testAttemptSpec({ run_id: 'r', command: 'true', store: 'file://x' }), slot: 'hpc' }]);
    await expect(submit).rejects.toThrow(UserError);
    await expect(submit).rejects.toThrow(/^slurm hpc: sbatch refused the job: sbatch: error: Batch job submission failed: Invalid partition name specified$/);
  });

  it('a stop asks the runner (stop request, USR1); force scancels', async () => {
    const login = new ScriptedLogin(() => ({ code: 0, stdout: '', stderr: '' }));
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    await backend.cancel(handle('7'));
    await backend.cancel(handle('7'), { preempt: true });
    await backend.cancel(handle('7'), { force: true });
    expect(login.calls.map((c) => [c.script === SLURM_CANCEL_SCRIPT, ...c.args])).toEqual([
      [true, 'sw/scratch/r/attempts/1', '7', 'stop'],
      [true, 'sw/scratch/r/attempts/1', '7', 'preempt'],
      [true, 'sw/scratch/r/attempts/1', '7', 'kill'],
    ]);
  });
});
