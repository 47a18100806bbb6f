// The SLURM backend's side of its login node, with a scripted login node: what it asks (one
// scheduler query per poll, the fallback to squeue found once), what it makes of the answers,
// and how it submits and stops. The scripts themselves run against a real cluster in
// test/integration/slurm.test.ts.
import { describe, expect, it, vi } from 'vitest';
import type { Handle } from '../../scripts/lib/backends/backend.js';
import { SlurmBackend } from '../../scripts/lib/backends/slurm.js';
import { ClusterSchema } from '../../scripts/lib/config/cluster-config.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import type { LoginNode, ShResult } from '../../scripts/lib/slurm/login-node.js';
import type { JobPaths } from '../../scripts/lib/slurm/render-sbatch.js';
import { SLURM_ARRAY_SIZE_SCRIPT, SLURM_CANCEL_SCRIPT, SLURM_FIND_SCRIPT, SLURM_KEEP_ARRAY_SIZE_SCRIPT, SLURM_KILL_SCRIPT, SLURM_POLL_SCRIPT, SLURM_SUBMIT_SCRIPT } from '../../scripts/lib/slurm/scripts.js';
import { shellQuote } from '../../scripts/lib/quote.js';
import { CHANNEL_COMMAND_MAX } from '../../scripts/lib/ssh/pool.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { testAttemptSpec } from '../helpers/runner-process.js';

const paths: JobPaths = { node: 'sw/runtime/node', runner: 'sw/runtime/r.mjs', repo: 'sw/repo', work: (u) => `sw/scratch/${u}`, logs: (r) => `sw/scratch/${r}/slurm` };

class ScriptedLogin implements LoginNode {
  readonly name = 'login1';
  readonly workersReachStore = true;
  calls: { script: string; args: readonly string[]; stdin?: string }[] = [];
  /** how often the cluster's config was asked for (not among `calls`) */
  configAsked = 0;
  /**
   * `config`: what `scontrol show config` prints; null: it fails. `records`: the files the
   * runs' array sizes are recorded in (a map of its own, or one shared as a filesystem is).
   */
  constructor(
    private readonly answer: (script: string, args: readonly string[]) => ShResult,
    public config: string | null = 'MaxArraySize            = 1001\n',
    readonly records = new Map<string, string>(),
  ) {}
  async sh(script: string, args: readonly string[], opts: { stdin?: string } = {}): Promise<ShResult> {
    if (script === SLURM_ARRAY_SIZE_SCRIPT) {
      const kept = this.records.get(args[0]!);
      if (kept) return { code: 0, stdout: `recorded\n${kept}\n`, stderr: '' };
      this.configAsked++;
      return this.config === null ? { code: 1, stdout: '', stderr: 'scontrol: error: Unable to contact slurm controller' } : { code: 0, stdout: this.config, stderr: '' };
    }
    if (script === SLURM_KEEP_ARRAY_SIZE_SCRIPT) {
      if (!this.records.has(args[0]!)) this.records.set(args[0]!, args[1]!);
      return { code: 0, stdout: `${this.records.get(args[0]!)}\n`, stderr: '' };
    }
    this.calls.push({ script, args, stdin: opts.stdin });
    return this.answer(script, args);
  }
  /** how often it was made ready (code synced, runner sent) */
  prepared = 0;
  async prepare() {
    this.prepared++;
    return { detail: 'ready', paths };
  }
  folders() {
    return paths;
  }
  workerSpec(spec: AttemptSpec) {
    return spec;
  }
  async pull() {}
  async pushCheckpoints() {}
}

const shards = (n: number) => Array.from({ length: n }, (_, i) => testAttemptSpec({ run_id: 'r', unit_id: `r/shards/${i}`, shard_index: i, shard_count: n, command: 'true', store: 'file://x' }));

const handle = (job: string, dir = `sw/scratch/r/attempts/1`) => ({ backend: 'slurm' as const, cluster: 'hpc', job, unit: 'r', attempt: 1, dir, submitted_at: new Date().toISOString(), grace_sec: 60 });

/** A poll's output: the scheduler's part, then each attempt's five sections. */
function pollOutput(args: readonly string[], head: string, attempts: string[][] = []): ShResult {
  const m = args[0]!;
  const count = (args.length - 4) / 3;
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
    // each attempt's folder relative to one, so a thousand jobs fit in one exec
    expect(login.calls[0]!.args.slice(3)).toEqual(['./sw/scratch/r', 'attempts/1', '0', '7', 'shards/1/attempts/1', '0', '8_1']);
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
    await new Promise((r) => setImmediate(r)); // the cancel goes with any others of this turn
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

  it("a controller that does not answer squeue --json's way (exit 0, no jobs, its errors): unanswered, never lost", async () => {
    // What 22.05's `squeue --json --states=all --me` printed with slurmctld down (test bed, exit 0).
    const down = JSON.stringify({
      meta: { plugin: { type: 'openapi/v0.0.38', name: 'Slurm OpenAPI v0.0.38' }, Slurm: { version: { major: 22, micro: 8, minor: 5 }, release: '22.05.8' } },
      errors: [{ description: 'Failed while looking for jobs', error_number: -1, error: 'Unspecified error', source: 'slurm_load_jobs' }],
      jobs: [],
    });
    const login = new ScriptedLogin((_s, args) => pollOutput(args, `squeue\n${down}`, [[JSON.stringify({ state: 'running' }), '', '', '', '']]));
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const weekOld = { ...handle('7'), submitted_at: new Date(Date.now() - 7 * 86_400_000).toISOString() };
    const [a] = await backend.pollMany([{ handle: weekOld, eventsFrom: 0 }]);
    expect(a).toMatchObject({ unanswered: true, reason: 'slurm hpc: squeue: Unspecified error (Failed while looking for jobs)' });
  });

  it('submits several units as one array in one call, the specs on its stdin; handles name their tasks', async () => {
    const login = new ScriptedLogin((script) => {
      expect(script).toBe(SLURM_SUBMIT_SCRIPT);
      return { code: 0, stdout: '4711\n', stderr: '' };
    });
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const units = shards(2);
    const handles = await backend.submitMany(units.map((spec) => ({ spec, slot: 'hpc' })));
    expect(handles.map((h) => [(h as Handle).job, (h as Handle).dir])).toEqual([['4711_0', 'sw/scratch/r/shards/0/attempts/1'], ['4711_1', 'sw/scratch/r/shards/1/attempts/1']]);
    expect(login.calls).toHaveLength(1);
    const { args, stdin = '' } = login.calls[0]!;
    const name = args[0]!.split('/').at(-1)!.replace('.sbatch', '');
    // the array's job name (its submission's), the spec's name, then the folders under one: SLURM's output's, each unit's
    expect(args.slice(2)).toEqual([name, 'attempt.json', './sw/scratch/r', 'slurm', 'shards/0/attempts/1', 'shards/1/attempts/1']);
    const lines = stdin.split('\n');
    expect(lines.slice(0, 2).map((l) => JSON.parse(l))).toEqual(units);
    expect(lines.slice(2).join('\n')).toMatch(/^#!\/bin\/bash\n#SBATCH --job-name=sy-r-/);
  });

  it('more units than MaxArraySize make several arrays; one refused fails its own units only; the config is asked once', async () => {
    let submits = 0;
    const login = new ScriptedLogin(() => {
      submits++;
      if (submits === 2) return { code: 12, stdout: '', stderr: 'sbatch: error: QOSMaxSubmitJobPerUserLimit\n' };
      return { code: 0, stdout: `${100 + submits}\n`, stderr: '' };
    }, 'SLURM_VERSION           = 23.11.4\nMaxArraySize            = 3\nMaxJobCount             = 10000\n');
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const outcomes = await backend.submitMany(shards(8).map((spec) => ({ spec, slot: 'hpc' })));
    expect(outcomes.map((o) => (o instanceof Error ? o.message : o.job))).toEqual([
      '101_0', '101_1', '101_2',
      ...Array(3).fill('slurm hpc: sbatch refused the job: sbatch: error: QOSMaxSubmitJobPerUserLimit'),
      '103_0', '103_1',
    ]);
    expect(login.calls.map((c) => c.args.slice(6))).toEqual([0, 3, 6].map((from) => Array.from({ length: Math.min(3, 8 - from) }, (_, i) => `shards/${from + i}/attempts/1`)));
    await backend.submitMany(shards(1).map((spec) => ({ spec, slot: 'hpc' })));
    expect(login.configAsked).toBe(1);
  });

  it('a cluster that allows huge arrays still gets submit calls an exec carries, every unit once and in order', async () => {
    const login = new ScriptedLogin((_s, args) => ({ code: 0, stdout: `${args.length}\n`, stderr: '' }), 'MaxArraySize = 100001\n');
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const units = Array.from({ length: 5000 }, (_, i) => testAttemptSpec({ run_id: 'r', unit_id: `r/${'a-long-search-name-'.repeat(4)}${i}`, shard_index: i, shard_count: 5000, command: 'true', store: 'file://x' }));
    const outcomes = await backend.submitMany(units.map((spec) => ({ spec, slot: 'hpc' })));
    expect(login.calls.length).toBeGreaterThan(1);
    for (const c of login.calls) expect(Buffer.byteLength(shellQuote(['sh', '-c', c.script, 'sh', ...c.args]))).toBeLessThan(CHANNEL_COMMAND_MAX);
    expect(login.calls.flatMap((c) => c.args.slice(6))).toEqual(units.map((u) => `${u.unit_id.slice(2)}/attempts/1`));
    expect(outcomes.every((o) => !(o instanceof Error))).toBe(true);
  });

  it('a config that cannot be read: several units wait for it (a guessed split could start them twice); one unit goes', async () => {
    const login = new ScriptedLogin(() => ({ code: 0, stdout: '1\n', stderr: '' }), null);
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const group = shards(1002).map((spec) => ({ spec, slot: 'hpc' }));
    await expect(backend.submitMany(group)).rejects.toThrow(
      new UserError("slurm hpc: `scontrol show config` did not answer (exit 1: scontrol: error: Unable to contact slurm controller); several units need the cluster's MaxArraySize to be cut into job arrays, so they wait for it"),
    );
    expect(login.calls).toEqual([]);
    // One unit is one job whatever the size: it is not asked.
    expect((await backend.submitMany(shards(1).map((spec) => ({ spec, slot: 'hpc' })))).every((o) => !(o instanceof Error))).toBe(true);
    expect(login.configAsked).toBe(1);
    // Asked again at the next submit, the group is cut as the cluster says.
    login.config = 'MaxArraySize = 600\n';
    login.calls = [];
    await backend.submitMany(group);
    expect(login.configAsked).toBe(2);
    expect(login.calls.map((c) => c.args.length - 6)).toEqual([600, 402]);
  });

  it("a config without MaxArraySize means SLURM's default size; MaxArraySize 0 means a job a unit", async () => {
    const unsaid = new ScriptedLogin(() => ({ code: 0, stdout: '1\n', stderr: '' }), 'MaxJobCount = 10000\n');
    await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: unsaid }).submitMany(shards(1002).map((spec) => ({ spec, slot: 'hpc' })));
    expect(unsaid.calls.map((c) => c.args.length - 6)).toEqual([1001, 1]);
    const off = new ScriptedLogin(() => ({ code: 0, stdout: '1\n', stderr: '' }), 'MaxArraySize = 0\n');
    await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: off }).submitMany(shards(2).map((spec) => ({ spec, slot: 'hpc' })));
    expect(off.calls.map((c) => c.stdin!.includes('--array'))).toEqual([false, false]);
  });

  it('finds submitted jobs in one call for every array, cut and named as submitMany cut them; submits nothing', async () => {
    const config = 'MaxArraySize = 3\n';
    const submitter = new ScriptedLogin((_s, args) => ({ code: 0, stdout: `${args.length}\n`, stderr: '' }), config);
    const group = shards(8).map((spec) => ({ spec, slot: 'hpc' }));
    const submitted = await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: submitter }).submitMany(group);
    const finder = new ScriptedLogin(() => ({ code: 0, stdout: '7\n-\n9\n', stderr: '' }), config);
    const found = await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: finder }).findSubmitted(group);
    expect(finder.calls.map((c) => c.script)).toEqual([SLURM_FIND_SCRIPT]);
    expect(finder.prepared).toBe(0); // a look syncs no project and sends no runner
    // per array the file its submit keeps the id in, and its job's name
    const kept = submitter.calls.map((c) => [c.args[1], c.args[2]]);
    expect(finder.calls[0]!.args).toEqual(kept.flat());
    expect(found.map((h) => h?.job ?? null)).toEqual(['7_0', '7_1', '7_2', null, null, null, '9_0', '9_1']);
    expect(found.map((h) => h && { ...h, submitted_at: 0 })).toEqual(submitted.map((h, i) => (i >= 3 && i < 6 ? null : { ...(h as Handle), job: found[i]!.job, submitted_at: 0 })));
  });

  it("a run keeps the split of its first submit: a resubmit or a look after MaxArraySize changed cuts and names the same arrays", async () => {
    const records = new Map<string, string>(); // the login node's filesystem, shared by every process
    const group = shards(8).map((spec) => ({ spec, slot: 'hpc' }));
    const first = new ScriptedLogin((_s, args) => ({ code: 0, stdout: `${args.length}\n`, stderr: '' }), 'MaxArraySize = 3\n', records);
    await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: first }).submitMany(group);
    const names = (login: ScriptedLogin) => login.calls.map((c) => c.args[2]);
    expect(first.calls.map((c) => c.args.length - 6)).toEqual([3, 3, 2]);
    expect([...records]).toEqual([['sw/scratch/r/slurm/array-size', '3']]);

    // An admin raised MaxArraySize; a later process submits the same attempts again, and looks for them.
    const later = new ScriptedLogin((_s, args) => ({ code: 0, stdout: `${args.length}\n`, stderr: '' }), 'MaxArraySize = 5\n', records);
    await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: later }).submitMany(group);
    expect(names(later)).toEqual(names(first));
    const finder = new ScriptedLogin(() => ({ code: 0, stdout: '7\n8\n9\n', stderr: '' }), 'MaxArraySize = 5\n', records);
    await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: finder }).findSubmitted(group);
    expect(finder.calls[0]!.args.filter((_, i) => i % 2 === 1)).toEqual(names(first));
    expect(later.configAsked + finder.configAsked).toBe(0);

    // A look at a run never submitted asks the cluster and records nothing; a damaged record is one line.
    const other = shards(8).map((spec) => ({ spec: { ...spec, run_id: 'q' }, slot: 'hpc' }));
    await new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: finder }).findSubmitted(other);
    expect(finder.configAsked).toBe(1);
    expect(records.size).toBe(1);
    records.set('sw/scratch/r/slurm/array-size', 'x');
    await expect(new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login: later }).submitMany(group)).rejects.toThrow(
      /^slurm hpc: sw\/scratch\/r\/slurm\/array-size holds "x", not the run's array size; delete it to ask the cluster again; several units need/,
    );
  });

  it('a search SLURM could not answer, or cut short, is a one-line error, never "not found"', async () => {
    const answers: ShResult[] = [
      { code: 1, stdout: '', stderr: 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n' },
      { code: 0, stdout: '7\n', stderr: '' },
    ];
    const login = new ScriptedLogin(() => answers.shift()!);
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    const group = shards(2).map((spec) => ({ spec, slot: 'hpc' }));
    await expect(backend.findSubmitted(group.slice(0, 1))).rejects.toThrow(
      new UserError('slurm hpc: squeue did not answer (exit 1: slurm_load_jobs error: Unable to contact slurm controller (connect failure)); the jobs these attempts may have started cannot be looked for'),
    );
    // two units are one array of MaxArraySize 1001: one line answers it
    expect((await backend.findSubmitted(group)).map((h) => h?.job)).toEqual(['7_0', '7_1']);
    answers.push({ code: 0, stdout: '', stderr: '' }, { code: 0, stdout: 'Welcome to the cluster\n', stderr: '' });
    await expect(backend.findSubmitted(group)).rejects.toThrow(/^slurm hpc: the search for submitted jobs answered "", not a job id or "-" for each job array$/);
    await expect(backend.findSubmitted(group)).rejects.toThrow(/^slurm hpc: the search for submitted jobs answered "Welcome to the cluster\\n"/);
  });

  it('sbatch refusing is one line', async () => {
    const login = new ScriptedLogin(() => ({ code: 12, stdout: '', stderr: 'sbatch: error: Batch job submission failed: Invalid partition name specified\n' }));
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({ partition: 'nosuch' }), login });
    const [outcome] = await backend.submitMany([{ spec: testAttemptSpec({ run_id: 'r', command: 'true', store: 'file://x' }), slot: 'hpc' }]);
    expect(outcome).toBeInstanceOf(UserError);
    expect((outcome as Error).message).toBe('slurm hpc: sbatch refused the job: sbatch: error: Batch job submission failed: Invalid partition name specified');
  });

  it('a stop asks the runner (stop request, USR1); force scancels', async () => {
    const login = new ScriptedLogin(() => ({ code: 0, stdout: '', stderr: '' }));
    const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
    await backend.cancel(handle('7'));
    await backend.cancel(handle('7'), { preempt: true });
    await backend.cancel(handle('7'), { force: true });
    expect(login.calls.map((c) => [c.script === SLURM_CANCEL_SCRIPT, ...c.args])).toEqual([
      [true, 'stop', 'sw/scratch/r/attempts/1', '7'],
      [true, 'preempt', 'sw/scratch/r/attempts/1', '7'],
      [true, 'kill', 'sw/scratch/r/attempts/1', '7'],
    ]);
  });

  it('stops asked in one turn go as one call a kind, and the cancels after their grace as one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const login = new ScriptedLogin(() => ({ code: 0, stdout: '', stderr: '' }));
      const backend = new SlurmBackend({ cluster: 'hpc', entry: ClusterSchema.parse({}), login });
      const jobs = ['7_0', '7_1', '7_2'];
      await Promise.all([...jobs.map((j, i) => backend.cancel(handle(j, `sw/scratch/r/shards/${i}/attempts/1`))), backend.cancel(handle('9'), { force: true })]);
      expect(login.calls.map((c) => [c.script === SLURM_CANCEL_SCRIPT, ...c.args])).toEqual([
        [true, 'stop', ...jobs.flatMap((j, i) => [`sw/scratch/r/shards/${i}/attempts/1`, j])],
        [true, 'kill', 'sw/scratch/r/attempts/1', '9'],
      ]);
      vi.advanceTimersByTime(70_000); // the grace (60 s) and ten more
      await new Promise((r) => setImmediate(r)); // the turn the cancels were gathered in
      expect(login.calls.slice(2).map((c) => [c.script === SLURM_KILL_SCRIPT, ...c.args])).toEqual([[true, ...jobs]]);
    } finally {
      vi.useRealTimers();
    }
  });
});
