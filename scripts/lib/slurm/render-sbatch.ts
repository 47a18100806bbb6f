// The sbatch script of one submission of a run's units, rendered purely: no I/O, so golden
// files pin it down (test/golden/slurm/). One unit is one job; several are one job array,
// `--array=0-<n-1>%<max_jobs>`, whose task i runs unit i. The script execs the runner, so the
// signals SLURM sends the batch shell reach it: USR1 `grace` seconds before the time limit
// (`--signal=B:USR1@<grace>`), which it answers by checkpointing and stopping, and TERM when a
// job is requeued or preempted. Every value from a spec or the config is one checked word in
// an `#SBATCH` line, or a single-quoted word in the script.
import type { ClusterEntry } from '../config/cluster-config.js';
import { slurmValueProblem } from '../config/slurm-word.js';
import { CONFIG_FILE } from '../config/load-config.js';
import { sha256Hex } from '../hash.js';
import { quoteWord } from '../quote.js';
import type { AttemptSpec } from '../runner/attempt-spec.js';
import { durationSec } from '../spec/formats.js';
import { UserError } from '../ui/errors.js';

/** Where a job's folders are, which a login node has before it is prepared. */
export interface JobFolders {
  /** a unit's scratch folder (a run id, or `<run_id>/shards/<i>`): the runner's --work */
  work(unit: string): string;
  /** where SLURM writes the job's own output (created before sbatch runs) */
  logs(runId: string): string;
}

/** Where things are for the job, as its script sees them: relative to the submit folder, or absolute. */
export interface JobPaths extends JobFolders {
  /** the Node runtime */
  node: string;
  /** the runner bundle */
  runner: string;
  /** the project: the runner's --root */
  repo: string;
}

export interface SbatchTarget {
  /** the cluster's name under `clusters:` */
  name: string;
  entry: ClusterEntry;
  paths: JobPaths;
}

/** The name of an attempt's spec in its folder. */
export const ATTEMPT_SPEC_FILE = 'attempt.json';

/** A unit's attempt folder: the runner's own, where its spec is written before the job runs. */
export function attemptDirPath(paths: JobFolders, unit: string, attempt: number | 'predict'): string {
  return `${paths.work(unit)}/attempts/${attempt}`;
}

/** A unit's attempt spec, as the runner reads it. */
export function attemptSpecPath(paths: JobPaths, unit: string, attempt: number | 'predict'): string {
  return `${attemptDirPath(paths, unit, attempt)}/${ATTEMPT_SPEC_FILE}`;
}

/**
 * The name of one submission: `sy-<run id>-<hash>` over the run and each unit with its attempt,
 * so submitting the same attempts again names the same submission (its job id is kept under it).
 * The supervisor sends a queued attempt again only with the attempts it went with (their group).
 */
export function submissionName(units: readonly Pick<AttemptSpec, 'run_id' | 'unit_id' | 'attempt'>[]): string {
  const what = units.map((u) => `${u.run_id} ${u.unit_id} ${u.attempt}`).sort().join('\n');
  return `sy-${units[0]!.run_id}-${sha256Hex(what).slice(0, 10)}`;
}

/** The job's name: the run, and for one unit its shard and attempt (`sy-<run>-s2-1`). */
export function jobName(units: readonly AttemptSpec[]): string {
  if (units.length > 1) return submissionName(units);
  const u = units[0]!;
  return `sy-${u.run_id}${u.shard_count > 1 ? `-s${u.shard_index}` : ''}-${u.attempt}`;
}

/** A value for an `#SBATCH` line: one word, or a one-line error naming where it came from. */
function word(field: string, value: string): string {
  const problem = slurmValueProblem(value);
  if (problem) throw new UserError(`${field}: ${JSON.stringify(value)} cannot go to sbatch: ${problem}; use one word of letters, digits, "_", "-", "."`);
  return value;
}

/** A path for an `#SBATCH` line (SLURM's output files): no space or quote can split it. */
function pathWord(p: string): string {
  if (!/^[A-Za-z0-9_.\/%+-]+$/.test(p)) throw new UserError(`sbatch: the job's output path ${JSON.stringify(p)} has a character sbatch would split on; move the project to a folder whose path is letters, digits, "_", "-", "." and "/"`);
  return p;
}

/** `--time` in whole minutes: the cluster's `time`, else the experiment's own limit plus its grace and a minute. */
function timeMinutes(unit: AttemptSpec, { name, entry }: SbatchTarget): number | null {
  const limit = unit.time_limit_sec ?? null;
  if (entry.time) {
    const sec = durationSec(entry.time);
    // The runner's own limit must come first: it checkpoints; SLURM's ends the job.
    if (limit !== null && sec < limit + unit.grace_sec) {
      throw new UserError(`${CONFIG_FILE}: clusters.${name}.time: ${entry.time} ends jobs before the experiment's time limit (resources.time, ${limit} s, and ${unit.grace_sec} s to checkpoint); raise it or leave it out`);
    }
    return Math.max(1, Math.ceil(sec / 60));
  }
  return limit === null ? null : Math.ceil((limit + unit.grace_sec + 60) / 60);
}

export function renderSbatch(units: readonly AttemptSpec[], target: SbatchTarget): string {
  const [first] = units;
  if (!first) throw new Error('renderSbatch: a job needs at least one unit');
  const { entry, paths, name } = target;
  const field = (key: string) => `${CONFIG_FILE}: clusters.${name}.${key}`;
  const minutes = timeMinutes(first, target);
  const array = units.length > 1;
  const logs = `${paths.logs(first.run_id)}/${array ? '%A_%a' : '%j'}`;
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=${word('job name', jobName(units))}`,
    `#SBATCH --output=${pathWord(`${logs}.out`)}`,
    `#SBATCH --error=${pathWord(`${logs}.err`)}`,
    '#SBATCH --open-mode=append',
  ];
  if (minutes !== null) lines.push(`#SBATCH --time=${minutes}`);
  lines.push(`#SBATCH --cpus-per-task=${entry.cpus}`);
  if (entry.mem) lines.push(`#SBATCH --mem=${word(field('mem'), entry.mem)}`);
  if (entry.gres) lines.push(`#SBATCH --gres=${word(field('gres'), entry.gres)}`);
  else if (entry.gpus > 0) lines.push(`#SBATCH --gres=gpu:${entry.gpus}`);
  for (const key of ['partition', 'account', 'qos', 'constraint'] as const) {
    const value = entry[key];
    if (value !== undefined) lines.push(`#SBATCH --${key}=${word(field(key), value)}`);
  }
  lines.push(`#SBATCH --signal=B:USR1@${Math.min(first.grace_sec, 65_535)}`);
  lines.push(entry.preemptible ? '#SBATCH --requeue' : '#SBATCH --no-requeue');
  if (array) lines.push(`#SBATCH --array=0-${units.length - 1}${entry.max_jobs && entry.max_jobs < units.length ? `%${entry.max_jobs}` : ''}`);
  lines.push(
    `# ${units.length === 1 ? `unit ${first.unit_id}, attempt ${first.attempt}` : `${units.length} units of run ${first.run_id}: array task i runs unit i`}`,
    'set -eu',
    'case "${SLURM_ARRAY_TASK_ID:-0}" in',
    ...units.map((u, i) => `  ${i}) spec=${quoteWord(attemptSpecPath(paths, u.unit_id, u.attempt))} work=${quoteWord(paths.work(u.unit_id))} ;;`),
    '  *) echo "switchyard: no unit for array task ${SLURM_ARRAY_TASK_ID:-0}" >&2; exit 2 ;;',
    'esac',
  );
  // The runner tells a USR1 near this deadline (the time limit) from one sent earlier (a stop).
  if (minutes !== null) lines.push(`SWITCHYARD_SLURM_DEADLINE=$(( $(date +%s) + ${minutes * 60} )); export SWITCHYARD_SLURM_DEADLINE`);
  lines.push(`exec ${quoteWord(paths.node)} ${quoteWord(paths.runner)} --spec "$spec" --root ${quoteWord(paths.repo)} --work "$work"`, '');
  return lines.join('\n');
}
