// The sbatch script of a submission, pinned down by golden files (test/golden/slurm/;
// UPDATE_GOLDEN=1 rewrites them), and the values it refuses before sbatch ever runs.
import { describe, expect, it } from 'vitest';
import { ClusterSchema, type ClusterEntry } from '../../scripts/lib/config/cluster-config.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { hostLayout } from '../../scripts/lib/remote/host-layout.js';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import { hostJobPaths } from '../../scripts/lib/slurm/job-paths.js';
import { renderSbatch, submissionName, type SbatchTarget } from '../../scripts/lib/slurm/render-sbatch.js';
import { formatZodIssue } from '../../scripts/lib/spec/zod-format.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { expectGolden } from '../helpers/golden.js';
import { testAttemptSpec } from '../helpers/runner-process.js';

const RUN = 'knn-fleet-20261130T1700-1a2b3c4d';
const layout = hostLayout('switchyard');
const paths = hostJobPaths(layout, layout.runner('0123456789abcdef0123456789abcdef'));

function target(over: Partial<ClusterEntry> = {}): SbatchTarget {
  return { name: 'hpc', entry: ClusterSchema.parse({ login: 'login1', partition: 'cpu', ...over }), paths };
}

function unit(i: number, count: number, over: Partial<AttemptSpec> = {}): AttemptSpec {
  return testAttemptSpec({ run_id: RUN, unit_id: count > 1 ? `${RUN}/shards/${i}` : RUN, command: 'python3 search.py', store: 'file://../store', shard_index: i, shard_count: count, grace_sec: 60, ...over });
}

describe('renderSbatch', () => {
  it('a CPU job: one unit, its time, cpus and memory, USR1 before the limit, the runner exec\'d', () => {
    const script = renderSbatch([unit(0, 1, { time_limit_sec: 3600 })], target({ cpus: 4, mem: '8G', account: 'lab-a', qos: 'normal' }));
    expectGolden('slurm/cpu.sbatch', script);
    expect(script).toMatch(/^#SBATCH --signal=B:USR1@60$/m);
    expect(script).toMatch(/^exec switchyard\/runtime\/node /m);
  });

  it('a GPU job: gres from the cluster, a constraint, the cluster time', () => {
    expectGolden('slurm/gpu.sbatch', renderSbatch([unit(0, 1, { attempt: 3 })], target({ partition: 'gpu', gpus: 2, constraint: 'a100', time: '4h' })));
    expect(renderSbatch([unit(0, 1)], target({ gres: 'gpu:a100:1', gpus: 1 }))).toMatch(/^#SBATCH --gres=gpu:a100:1$/m);
  });

  it('an array of 8 shards, 2 at a time: task i runs unit i', () => {
    const units = Array.from({ length: 8 }, (_, i) => unit(i, 8, { attempt: i === 5 ? 2 : 1 }));
    const script = renderSbatch(units, target({ max_jobs: 2 }));
    expectGolden('slurm/array-8-parallel-2.sbatch', script);
    expect(script).toMatch(/^#SBATCH --array=0-7%2$/m);
    expect(script).toContain(`--job-name=${submissionName(units)}`);
  });

  it('a preemptible job is requeued by SLURM; others are not', () => {
    expectGolden('slurm/preemptible.sbatch', renderSbatch([unit(0, 1)], target({ preemptible: true })));
    expect(renderSbatch([unit(0, 1)], target())).toMatch(/^#SBATCH --no-requeue$/m);
  });

  it('the same attempts name the same submission, in any order; another attempt another', () => {
    const units = [unit(0, 2), unit(1, 2)];
    expect(submissionName([...units].reverse())).toBe(submissionName(units));
    expect(submissionName([unit(0, 2), unit(1, 2, { attempt: 2 })])).not.toBe(submissionName(units));
  });

  it('a time shorter than the experiment\'s own limit and grace is refused', () => {
    expect(() => renderSbatch([unit(0, 1, { time_limit_sec: 3600 })], target({ time: '30m' }))).toThrow(/clusters\.hpc\.time: 30m ends jobs before the experiment's time limit/);
  });
});

describe('hostile values', () => {
  const hostile: [keyof ClusterEntry, string, RegExp][] = [
    ['partition', 'cpu\n#SBATCH --uid=0', /clusters\.hpc\.partition: a newline is not allowed/],
    ['account', 'lab a', /clusters\.hpc\.account: a space is not allowed/],
    ['qos', "normal';rm -rf ~'", /clusters\.hpc\.qos: "'" is not allowed/],
    ['constraint', '-x', /clusters\.hpc\.constraint: it starts with "-"/],
  ];

  for (const [key, value, line] of hostile) {
    it(`${key} ${JSON.stringify(value)}: one line when the config loads`, () => {
      const raw = { clusters: { hpc: { login: 'local', [key]: value } } };
      const parsed = ConfigSchema.safeParse(raw);
      expect(parsed.success).toBe(false);
      const text = formatZodIssue('cluster_fleet_config.ts', parsed.error!, ConfigSchema, raw);
      expect(text).toMatch(line);
      expect(text).not.toContain('\n');
    });

    it(`${key} ${JSON.stringify(value)}: refused by the renderer too`, () => {
      const t = target();
      (t.entry as Record<string, unknown>)[key] = value;
      let err: unknown;
      try {
        renderSbatch([unit(0, 1)], t);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(new RegExp(`^cluster_fleet_config\\.ts: clusters\\.hpc\\.${key}: .* cannot go to sbatch`));
      expect((err as Error).message).not.toContain('\n');
    });
  }

  it('a hostile job name (a run id sbatch would split) is refused', () => {
    expect(() => renderSbatch([unit(0, 1, { run_id: 'a b' })], target())).toThrow(/^job name: "sy-a b-1" cannot go to sbatch: a space is not allowed/);
  });
});
