// What a unit's attempt ships to its worker: the runner's whole input, as plain JSON.
import path from 'node:path';
import { dataCacheFile } from '../pins/pin-experiment.js';
import type { Project } from '../project.js';
import type { AttemptSpec } from '../runner/attempt-spec.js';
import { durationSec, setupOf } from '../spec/experiment.js';
import { unitKey, type RunRecord } from './run-record.js';

/** The spec of one attempt (or the predict phase) of unit `unit` of a run. */
export function attemptSpec(project: Project, run: RunRecord, unit: number, attempt: number | 'predict'): AttemptSpec {
  const { spec } = run;
  const [slug, name = 'default'] = run.experiment.split('/');
  const competition = path.join('competitions', slug!);
  const setup = setupOf(spec);
  return {
    run_id: run.run_id,
    unit_id: unitKey(run, unit),
    pins_digest: run.pins.digest,
    attempt,
    command: attempt === 'predict' ? run.command.predict! : run.command.train,
    setup: setup?.command ?? null,
    cwd: competition,
    // Runs recorded before these fields existed have none of them in their spec: the defaults.
    command_cwd: (attempt === 'predict' ? spec.predict?.cwd : spec.train.cwd) ?? null,
    setup_cwd: setup?.cwd ?? null,
    data_dir: spec.data ? path.relative(project.root, path.resolve(project.root, competition, spec.data.dir)) : null,
    data_pin: spec.data ? { root: run.pins.data.root, include: spec.data.include, exclude: spec.data.exclude, cache: dataCacheFile({ slug: slug!, name }) } : null,
    metrics_from: attempt === 'predict' ? null : (spec.train.metrics_from ?? null),
    env: spec.train.env,
    secrets: spec.secrets,
    secrets_file: '.env',
    venv: null,
    seed: run.pins.seed,
    ckpt_every_sec: spec.train.checkpoint_every_sec,
    grace_sec: spec.train.grace_sec,
    time_limit_sec: spec.resources?.time && attempt !== 'predict' ? durationSec(spec.resources.time) : null,
    keep_checkpoints: spec.train.keep_checkpoints,
    shard_index: run.sharded ? unit : 0,
    shard_count: run.sharded ? run.units.length : 1,
    store: project.store.url,
    store_s3: project.config.defaults.s3 ?? null,
  };
}
