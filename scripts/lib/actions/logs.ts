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

export async function* runLogs(project: Project, run: RunRecord, opts: LogsOptions): AsyncIterable<string> {
  if (run.sharded && opts.shard === undefined) throw new UserError(`logs: run ${run.run_id} is a fleet search; add shard=<0-${run.units.length - 1}>`);
  const index = opts.shard ?? 0;
  const unit = run.units[index];
  if (run.sharded && !unit) throw new UserError(`logs: run ${run.run_id} has no shard ${opts.shard}`);
  const attempts = unit?.attempts ?? [];
  const attempt = opts.attempt === undefined ? attempts.at(-1) : attempts.find((a) => a.n === opts.attempt);
  if (opts.attempt === 'predict' || !attempt?.handle) {
    const which = opts.attempt ?? 'predict';
    const key = runKeys.attemptFile(unitKey(run, index), which, `${opts.stream}.log`);
    const bytes = await project.store.read(key); // streamed; no stat first, which would hash a file store's log whole
    if (!bytes) throw new UserError(`logs: run ${run.run_id} has no ${opts.stream} log for attempt ${which}`);
    yield* utf8Text(bytes);
    return;
  }
  yield* (await backendForHandle(project, attempt.handle)).logs(attempt.handle, { follow: opts.follow, stream: opts.stream, signal: opts.signal });
}
