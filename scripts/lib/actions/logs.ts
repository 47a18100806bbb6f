// make logs: an attempt's output, from where it runs (followed as it grows) or from the store,
// a chunk at a time (a log may be larger than this machine's memory).
import { backendForHandle } from '../backends/index.js';
import { utf8Text } from '../backends/log-text.js';
import type { Project } from '../project.js';
import { runKeys, unitKey, type RunRecord } from '../runs/run-record.js';
import { UserError } from '../ui/errors.js';

export interface LogsOptions {
  shard?: number;
  attempt?: number | 'predict';
  stream: 'stdout' | 'stderr';
  follow: boolean;
  /** aborted: a follow ends at once (a reader gone while the log is quiet) */
  signal?: AbortSignal;
}

/** An attempt number the run (as recorded here) does not have, and the store has no log of: the ones it has. */
function noSuchAttempt(run: RunRecord, index: number, n: number, attempts: readonly { n: number }[]): UserError {
  const has = attempts.length ? `its attempts are ${attempts[0]!.n}-${attempts.at(-1)!.n}` : 'it has no attempts yet';
  return new UserError(`logs: run ${run.run_id}${run.sharded ? ` shard ${index}` : ''} has no attempt ${n}; ${has}`);
}

export async function* runLogs(project: Project, run: RunRecord, opts: LogsOptions): AsyncIterable<string> {
  if (run.sharded && opts.shard === undefined) throw new UserError(`logs: run ${run.run_id} is a fleet search; add shard=<0-${run.units.length - 1}>`);
  // A run of one unit has only shard 0: any other would read as a missing prediction log.
  if (!run.sharded && opts.shard) throw new UserError(`logs: run ${run.run_id} is not sharded (one unit, shard 0); leave out shard=${opts.shard}`);
  const index = opts.shard ?? 0;
  const unit = run.units[index];
  if (run.sharded && !unit) throw new UserError(`logs: run ${run.run_id} has no shard ${opts.shard}; its shards are 0-${run.units.length - 1}`);
  const attempts = unit?.attempts ?? [];
  const attempt = opts.attempt === undefined ? attempts.at(-1) : attempts.find((a) => a.n === opts.attempt);
  if (opts.attempt === 'predict' || !attempt?.handle) {
    // Not given: the newest attempt's own log, never the prediction's.
    const which = opts.attempt ?? attempt?.n;
    if (which === undefined) throw new UserError(`logs: run ${run.run_id}${run.sharded ? ` shard ${index}` : ''} has no attempts yet (make status run=${run.run_id} says where it stands)`);
    const key = runKeys.attemptFile(unitKey(run, index), which, `${opts.stream}.log`);
    const bytes = await project.store.read(key); // streamed; no stat first, which would hash a file store's log whole
    if (!bytes && typeof which === 'number' && !attempt) throw noSuchAttempt(run, index, which, attempts);
    if (!bytes) throw new UserError(`logs: run ${run.run_id} has no ${opts.stream} log for attempt ${which}`);
    yield* utf8Text(bytes);
    return;
  }
  yield* (await backendForHandle(project, attempt.handle)).logs(attempt.handle, { follow: opts.follow, stream: opts.stream, signal: opts.signal });
}
