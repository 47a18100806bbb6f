// GET routes of runs: the table, one run, its log (followed as it grows, or whole as a file) and
// its metrics. Everything comes from the actions make status and make logs use.
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { Router, type Request, type Response } from 'express';
import { lookAtUnits } from '../../scripts/lib/actions/look.js';
import { runLogs, type LogsOptions } from '../../scripts/lib/actions/logs.js';
import type { Project } from '../../scripts/lib/project.js';
import { runKeys, unitKey, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { CUT_SHORT } from '../../scripts/lib/sleep-unless.js';
import { BadRequest, checkParam, EXPERIMENT, HOST, queryInt, queryValue, RUN_ID, SLUG } from '../params.js';
import { hostOf, queryRows, type RunsCache, type RunsQuery } from '../runs-view.js';
import type { EnvSecrets } from '../secrets.js';
import { readMetrics } from '../metrics.js';

export interface RunsDeps {
  project: Project;
  runs: RunsCache;
  secrets: EnvSecrets;
}

/** The run named by :run, or a 404 answered (null). */
function runOr404(project: Project, req: Request, res: Response): RunRecord | null {
  const run = project.db.get(String(req.params.run));
  if (!run) res.status(404).json({ error: `no run ${req.params.run}` });
  return run;
}

/** shard=, attempt=, stream= of a log request. */
function logOptions(req: Request, run: RunRecord): Omit<LogsOptions, 'follow'> {
  const shard = queryInt(req, 'shard', 100_000);
  if (shard !== undefined && !run.units[shard]) throw new BadRequest(`shard: run ${run.run_id} has no shard ${shard}`);
  const attempt = queryValue(req, 'attempt', /^(\d{1,6}|predict)$/);
  const stream = queryValue(req, 'stream', /^(stdout|stderr)$/) as LogsOptions['stream'] | undefined;
  return { shard: run.sharded ? (shard ?? 0) : shard, attempt: attempt === undefined || attempt === 'predict' ? attempt : Number(attempt), stream: stream ?? 'stdout' };
}

/** An iterator's items from `first` on, one already taken; stopping early returns the iterator. */
async function* resumed<T>(first: IteratorResult<T>, rest: AsyncIterator<T>): AsyncGenerator<T> {
  try {
    for (let next = first; !next.done; next = await rest.next()) yield next.value;
  } finally {
    await rest.return?.();
  }
}

/** One server-sent event: its name and its text as a JSON string (one `data:` line, whatever it holds). */
function sseEvent(event: string, text: string): string {
  return `event: ${event}\ndata: ${JSON.stringify(text)}\n\n`;
}

/** `chunk` events of the bytes written in, as text: a character cut between two writes is sent whole. */
function chunkEvents(): Transform {
  const decoder = new StringDecoder('utf8');
  const event = (text: string) => (text ? sseEvent('chunk', text) : undefined);
  return new Transform({
    transform(bytes: Buffer, _encoding, done) {
      done(null, event(decoder.write(bytes)));
    },
    flush(done) {
      done(null, event(decoder.end()));
    },
  });
}

/** The items of `items` until it fails; its failure ends them quietly, kept in `outcome`. */
async function* untilFailure<T>(items: AsyncIterable<T>, outcome: { failure?: Error }): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (err) {
    outcome.failure = err as Error;
  }
}

/** The checkpoint steps each unit has in the store. */
async function checkpoints(project: Project, run: RunRecord): Promise<{ unit: number; steps: number[] }[]> {
  const units = run.units.length ? run.units.map((u) => u.index) : [0];
  return Promise.all(
    units.map(async (unit) => {
      const prefix = runKeys.ckptDir(unitKey(run, unit));
      const keys = await project.store.list(prefix).catch(() => [] as string[]);
      const steps = new Set(keys.map((k) => Number(k.slice(prefix.length).split('/')[0])).filter((n) => Number.isSafeInteger(n)));
      return { unit, steps: [...steps].sort((a, b) => a - b) };
    }),
  );
}

export function runsRoutes({ project, runs, secrets }: RunsDeps): Router {
  const r = Router();
  r.param('run', checkParam(RUN_ID, 'run id'));

  r.get('/api/runs', async (req, res) => {
    const q: RunsQuery = {
      competition: queryValue(req, 'competition', SLUG),
      experiment: queryValue(req, 'experiment', EXPERIMENT),
      backend: queryValue(req, 'backend', SLUG),
      state: queryValue(req, 'state', SLUG),
      host: queryValue(req, 'host', HOST),
      q: queryValue(req, 'q', /^[A-Za-z0-9_/-]{1,100}$/)?.toLowerCase(),
      sort: queryValue(req, 'sort', /^(created|experiment|state|step|metric|backend)$/) as RunsQuery['sort'],
      dir: queryValue(req, 'dir', /^(asc|desc)$/) as RunsQuery['dir'],
      offset: queryInt(req, 'offset'),
      limit: queryInt(req, 'limit', 1000),
    };
    const page = queryRows(await runs.rows(), q);
    res.json({ ...page, rows: runs.costed(page.rows) });
  });

  r.get('/api/runs/:run', async (req, res) => {
    const run = runOr404(project, req, res);
    if (!run) return;
    const [units, ckpts] = await Promise.all([lookAtUnits(project, run), checkpoints(project, run)]);
    res.json({
      run: {
        run_id: run.run_id,
        experiment: run.experiment,
        created_at: run.created_at,
        pins: run.pins,
        backends: run.backends,
        replay_of: run.replay_of,
        sharded: run.sharded,
        fleet: run.fleet ?? null,
        grace_sec: run.spec.train.grace_sec,
      },
      units: run.units.map((u, i) => ({
        ...units[i],
        moved_from: u.moved_from,
        attempts: u.attempts.map((a) => ({
          n: a.n,
          backend: a.backend,
          host: hostOf(a.handle),
          state: a.state,
          reason: a.reason,
          exit_code: a.exit_code,
          started_at: a.started_at,
          ended_at: a.ended_at,
          restored_step: a.restored_step,
          last_step: a.last_step,
        })),
      })),
      checkpoints: ckpts,
      replay: `make replay run=${run.run_id}`,
    });
  });

  // The log as it grows: server-sent events, each a chunk of text (masked), then `end` (or
  // `failed`, with why). Sent as the reader takes them: the pipeline writes on only once the
  // response has drained, so a reader slower than the log holds the follow where it is (the file
  // unread, `tail -F` waiting on its channel's shut window) and memory stays a few chunks.
  r.get('/api/runs/:run/log/stream', async (req, res) => {
    const run = runOr404(project, req, res);
    if (!run) return;
    const opts = logOptions(req, run);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(': log\n\n');
    const follow = new AbortController();
    // A reader gone ends the follow now, closing its file, timer or channel: the pipeline's
    // return() alone waits for the log's next chunk, which a quiet log may never reach.
    res.once('close', () => follow.abort(CUT_SHORT));
    // Only into an idle stream: one that is behind needs no keep-alive, nor more to hold.
    const heartbeat = setInterval(() => res.writableLength === 0 && res.write(': alive\n\n'), 15_000);
    const outcome: { failure?: Error } = {};
    const log = untilFailure(runLogs(project, run, { ...opts, follow: true, signal: follow.signal }), outcome);
    try {
      // Bytes, not objects, between the stages: each holds a few KiB, not 16 chunks.
      await pipeline(Readable.from(log, { objectMode: false }), secrets.maskingStream(), chunkEvents(), res, { end: false });
      res.end(outcome.failure ? sseEvent('failed', secrets.current().text(outcome.failure.message.split('\n')[0]!)) : sseEvent('end', ''));
    } catch (err) {
      if (!follow.signal.aborted) throw err;
    } finally {
      clearInterval(heartbeat);
    }
  });

  // The whole log as a file, streamed from where it is (file, ssh channel, store) as the client
  // takes it: memory stays a few chunks whatever the log's size. A client gone mid-download ends
  // the read, closing its file or its channel (and `cat` with it).
  r.get('/api/runs/:run/log', async (req, res) => {
    const run = runOr404(project, req, res);
    if (!run) return;
    const opts = logOptions(req, run);
    const reading = new AbortController();
    res.once('close', () => reading.abort(CUT_SHORT));
    const log = runLogs(project, run, { ...opts, follow: false, signal: reading.signal })[Symbol.asyncIterator]();
    const first = await log.next(); // a log that cannot be read is still an error status, before any header
    const name = `${run.run_id}${run.sharded ? `-shard${opts.shard}` : ''}-${opts.stream}.log`;
    res.type('text/plain; charset=utf-8').attachment(name);
    await pipeline(Readable.from(resumed(first, log)), secrets.maskingStream(), res).catch((err: unknown) => {
      if (!reading.signal.aborted) throw err;
    });
  });

  // Metrics as columns, every attempt of one unit; `have` is the version the page already holds.
  r.get('/api/runs/:run/metrics', async (req, res) => {
    const run = runOr404(project, req, res);
    if (!run) return;
    const shard = queryInt(req, 'shard', 100_000) ?? 0;
    if (run.units.length && !run.units[shard]) throw new BadRequest(`shard: run ${run.run_id} has no shard ${shard}`);
    const have = queryValue(req, 'have', /^[0-9a-z:.-]{1,200}$/);
    const m = await readMetrics(project, run, shard);
    res.json(have === m.version ? { version: m.version, unchanged: true } : m);
  });

  return r;
}
