// POST routes: the operator's actions, each the same action a verb calls, each written to the
// ledger with who took it and how it ended. The auth middleware has checked Origin, session and
// CSRF token before any of these runs. Destructive ones (stop, retry, submit) also need
// `confirm: true` in the body: the page asks first.
import path from 'node:path';
import { Router, type Request, type Response } from 'express';
import { drive } from '../../scripts/lib/actions/launch.js';
import { pullRun } from '../../scripts/lib/actions/pull.js';
import { askAgentToRetry, planRetry } from '../../scripts/lib/actions/retry.js';
import { stopWanted } from '../../scripts/lib/actions/stop.js';
import { submitRun } from '../../scripts/lib/actions/submit.js';
import { syncHost } from '../../scripts/lib/actions/sync.js';
import type { Project } from '../../scripts/lib/project.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';
import { recordInLedger } from '../../scripts/lib/runs/run-store.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { BadRequest, checkParam, HOST, RUN_ID } from '../params.js';
import type { RunsCache } from '../runs-view.js';
import type { EnvSecrets } from '../secrets.js';

export interface ActionsDeps {
  project: Project;
  runs: RunsCache;
  secrets: EnvSecrets;
}

type Outcome = { status?: number; body: Record<string, unknown> };

function needsConfirm(req: Request): void {
  if (req.body?.confirm !== true) throw new BadRequest('this action needs confirmation: send {"confirm": true}');
}

/**
 * The `shards` asked for: absent, undefined (a stop's whole run); else a list of the run's shard
 * numbers. Anything else is refused, never read as absent (`"shards": 1` must not stop every
 * shard) nor coerced (`[null]` is not shard 0).
 */
function shardsAsked(req: Request, run: RunRecord): number[] | undefined {
  const shards: unknown = req.body?.shards;
  if (shards === undefined) return undefined;
  if (!Array.isArray(shards) || !shards.length || shards.some((s) => !Number.isSafeInteger(s) || s < 0)) throw new BadRequest('shards: a list of shard numbers, e.g. [1, 4]');
  const missing = (shards as number[]).find((s) => !run.units[s]);
  if (missing !== undefined) throw new BadRequest(`shards: run ${run.run_id} has no shard ${missing}`);
  return shards as number[];
}

export function actionsRoutes({ project, runs, secrets }: ActionsDeps): Router {
  const r = Router();
  r.param('run', checkParam(RUN_ID, 'run id'));
  r.param('host', checkParam(HOST, 'host'));

  const runOf = (req: Request): RunRecord => {
    const run = project.db.get(String(req.params.run));
    if (!run) throw new UserError(`no run ${req.params.run}`, 404);
    return run;
  };

  /** Runs `act`, records it in the ledger (ok, or the error's first line), answers with its outcome. */
  const acting =
    (action: string, act: (req: Request, res: Response) => Promise<Outcome>) =>
    async (req: Request, res: Response) => {
      const who = String(res.locals.who ?? 'operator');
      const target = { ...(req.params.run ? { run_id: String(req.params.run) } : {}), ...(req.params.host ? { host: String(req.params.host) } : {}) };
      let outcome: Outcome;
      try {
        outcome = await act(req, res);
      } catch (err) {
        if (err instanceof BadRequest) throw err; // refused before anything happened: not an action
        const message = secrets.current().text((err as Error).message.split('\n')[0]!);
        await recordInLedger(project, 'dashboard.action', { who, action, ...target, result: `error: ${message}` });
        throw err;
      } finally {
        runs.invalidate();
      }
      await recordInLedger(project, 'dashboard.action', { who, action, ...target, detail: outcome.body, result: 'ok' });
      res.status(outcome.status ?? 200).json({ ok: true, ...outcome.body });
    };

  r.post(
    '/api/runs/:run/stop',
    acting('stop', async (req) => {
      needsConfirm(req);
      const run = runOf(req);
      const outcome = await stopWanted(project, run, { force: req.body?.force === true, units: shardsAsked(req, run) });
      return { body: outcome.by === 'agent' ? { agent: outcome.pid, answer: outcome.answer, settled: outcome.settled } : { ...outcome.result } };
    }),
  );

  r.post(
    '/api/runs/:run/pull',
    acting('pull', async (req) => {
      const run = runOf(req);
      const dest = path.join(project.root, 'outputs', run.run_id);
      const pulled = await pullRun(project, run, dest);
      return { body: { files: pulled.files, noOutputs: pulled.noOutputs, dest: path.relative(project.root, dest) } };
    }),
  );

  // Runs the shards again from their checkpoints; this server follows them (as make retry would)
  // and answers once they are submitted.
  r.post(
    '/api/runs/:run/retry',
    acting('retry', async (req) => {
      needsConfirm(req);
      const run = runOf(req);
      const shards = shardsAsked(req, run);
      if (!shards) throw new BadRequest('shards: a list of shard numbers, e.g. [1, 4]');
      const host = typeof req.body?.host === 'string' && req.body.host ? req.body.host : undefined;
      if (host !== undefined && !HOST.test(host)) throw new BadRequest('host: not a host name');
      const plan = await planRetry(project, run, shards, host);
      const asked = await askAgentToRetry(project, run, plan);
      if (asked) return { status: 202, body: { shards: plan.only, host: plan.slot ?? null, agent: asked.pid, answer: asked.answer } };
      const opened = new Promise<void>((resolve, reject) => {
        drive({ project, sink: (e) => e.type === 'opened' && resolve() }, run, plan.backend, { how: 'retry', only: plan.only, slot: plan.slot })
          .then(() => resolve(), reject)
          .finally(() => runs.invalidate());
      });
      await opened;
      return { status: 202, body: { shards: plan.only, host: plan.slot ?? null } };
    }),
  );

  // A real upload unless dry; either way recorded under the run and in the ledger by submitRun.
  r.post(
    '/api/runs/:run/submit',
    acting('submit', async (req) => {
      const dry = req.body?.dry !== false;
      if (!dry) needsConfirm(req);
      const message = typeof req.body?.message === 'string' && req.body.message.trim() ? req.body.message.slice(0, 500) : undefined;
      const result = await submitRun(project, runOf(req), { dry, message });
      return { body: { stamp: result.stamp, dry: result.record.dry, score: result.record.score ?? null, sha256: result.record.sha256 } };
    }),
  );

  r.post(
    '/api/hosts/:host/sync',
    acting('sync', async (req) => {
      const result = await syncHost(project, String(req.params.host));
      return { body: { ...result } };
    }),
  );

  return r;
}
