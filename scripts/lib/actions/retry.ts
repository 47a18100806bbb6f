// make retry: which shards of a sharded search run again, and where. Checked here so the verb and
// the dashboard refuse the same things; `drive` (launch.ts) then runs them.
import { agentWho, lookAtAgent } from '../agent/agent-lock.js';
import { agentHome } from '../agent/home.js';
import { askAgent } from '../agent/requests.js';
import type { Backend } from '../backends/backend.js';
import { backendForHandle } from '../backends/index.js';
import type { Project } from '../project.js';
import type { RunRecord } from '../runs/run-record.js';
import { UserError } from '../ui/errors.js';

export interface RetryPlan {
  backend: Backend;
  only: number[];
  /** the host they start on: `host` when given, else one they did not last run on */
  slot: string | undefined;
}

export async function planRetry(project: Project, run: RunRecord, shards: number[], host?: string): Promise<RetryPlan> {
  if (!run.sharded) throw new UserError(`retry: run ${run.run_id} is not a sharded search; make train experiment=${run.experiment} resumes it`);
  const only = [...new Set(shards)];
  if (!only.length) throw new UserError(`shard: name at least one shard of run ${run.run_id}`);
  const bad = only.find((i) => i >= run.units.length);
  if (bad !== undefined) throw new UserError(`shard: ${bad} is not a shard of run ${run.run_id} (it has shards 0-${run.units.length - 1})`);
  const busy = only.filter((i) => ['running', 'pending'].includes(run.units[i]!.attempts.at(-1)?.state ?? ''));
  if (busy.length) throw new UserError(`shard ${busy.join(',')} of run ${run.run_id} is still running; make stop run=${run.run_id} first, or wait`);
  const last = run.units[only[0]!]!.attempts.at(-1);
  if (!last?.handle) throw new UserError(`shard ${only[0]} of run ${run.run_id} has never started; make train experiment=${run.experiment} starts it`);
  const backend = await backendForHandle(project, last.handle);
  const hosts = backend.slots().map((s) => s.name);
  if (host && !hosts.includes(host)) throw new UserError(`host: ${host} is not in fleet ${run.fleet} (its hosts: ${hosts.join(', ')})`);
  const before = only.map((i) => run.units[i]!.attempts.at(-1)?.handle?.host);
  return { backend, only, slot: host ?? hosts.find((h) => !before.includes(h)) ?? hosts[0] };
}

/**
 * While an agent runs it drives every run, so it is asked to start the units (make retry and
 * the dashboard then return); null when no agent runs and the caller drives them itself.
 */
export async function askAgentToRetry(project: Project, run: RunRecord, plan: RetryPlan): Promise<{ pid: number; who: string; answer: string } | null> {
  const home = agentHome(project);
  const agent = await lookAtAgent(home);
  if (agent.state !== 'running') return null;
  const who = agentWho(agent.info);
  const answer = await askAgent(home, { verb: 'retry', run_id: run.run_id, units: plan.only, host: plan.slot }, who);
  return { pid: agent.info.pid, who, answer };
}
