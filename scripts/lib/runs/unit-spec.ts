// What a unit's attempt ships to its worker: the runner's whole input, as plain JSON.
import path from 'node:path';
import type { Project } from '../project.js';
import type { AttemptSpec } from '../runner/attempt-spec.js';
import { durationSec } from '../spec/experiment.js';
import { unitKey, type RunRecord } from './run-record.js';

/** The spec of one attempt (or the predict phase) of unit `unit` of a run. */
export function attemptSpec(project: Project, run: RunRecord, unit: number, attempt: number | 'predict'): AttemptSpec {
  const { spec } = run;
  const [slug] = run.experiment.split('/');
  const competition = path.join('competitions', slug!);
  return {
    run_id: run.run_id,
    unit_id: unitKey(run, unit),
    pins_digest: run.pins.digest,
    attempt,
    command: attempt === 'predict' ? run.command.predict! : run.command.train,
    setup: spec.setup ?? null,
    cwd: competition,
    data_dir: spec.data ? path.relative(project.root, path.resolve(project.root, competition, spec.data.dir)) : null,
    env: spec.train.env,
    secrets: spec.secrets,
    secrets_file: '.env',
    venv: null,
    seed: run.pins.seed,
    ckpt_every_sec: spec.train.checkpoint_every_sec,
    grace_sec: spec.train.grace_sec,
    time_limit_sec: spec.resources.time && attempt !== 'predict' ? durationSec(spec.resources.time) : null,
    keep_checkpoints: spec.train.keep_checkpoints,
    shard_index: run.sharded ? unit : 0,
    shard_count: run.sharded ? run.units.length : 1,
    store: project.store.url,
    store_s3: project.config.defaults.s3 ?? null,
  };
}
