// What other processes ask of the agent (make stop, make retry, the dashboard): one JSON file per
// request under `requests/` in the agent's home (home.ts), answered by a `<id>.answer.json`
// beside it. The agent is the one writer of the runs it drives; everyone else reads and asks.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Project } from '../project.js';
import { loadRun } from '../runs/run-store.js';
import { hasLiveUnit, type RunRecord } from '../runs/run-record.js';
import { UserError } from '../ui/errors.js';
import type { AgentHome } from './home.js';

export type AgentRequest =
  | { verb: 'stop'; run_id: string; force?: boolean; units?: number[] }
  | { verb: 'retry'; run_id: string; units?: number[]; host?: string };

export interface AgentAnswer {
  ok: boolean;
  /** what happened, one line */
  message: string;
}

const REQUEST = '.request.json';
const ANSWER = '.answer.json';
const at = (id: string, kind: string) => `requests/${id}${kind}`;

/** Leaves a request for the agent; returns its id. */
export async function sendRequest(home: AgentHome, req: AgentRequest): Promise<string> {
  const id = `${Date.now()}-${randomBytes(4).toString('hex')}`;
  await home.write(at(id, REQUEST), JSON.stringify(req) + '\n');
  return id;
}

/** The agent's answer to a request, once it has one; null past `ms`. */
export async function awaitAnswer(home: AgentHome, id: string, ms: number): Promise<AgentAnswer | null> {
  const every = home.kind === 'store' ? 500 : 100;
  for (const until = Date.now() + ms; Date.now() < until; await sleep(every)) {
    const text = await home.read(at(id, ANSWER));
    if (!text) continue;
    try {
      const answer = JSON.parse(text) as AgentAnswer;
      await home.remove(at(id, ANSWER));
      return answer;
    } catch {
      // not whole yet (a folder home's rename makes that rare)
    }
  }
  return null;
}

/** The requests waiting, oldest first. */
export async function pendingRequests(home: AgentHome): Promise<{ id: string; req: AgentRequest }[]> {
  const names = (await home.list('requests')).filter((f) => f.endsWith(REQUEST));
  const out: { id: string; req: AgentRequest }[] = [];
  for (const f of names) {
    const id = f.slice(0, -REQUEST.length);
    try {
      out.push({ id, req: JSON.parse((await home.read(at(id, REQUEST))) ?? '') as AgentRequest });
    } catch {
      // being written, or taken meanwhile
    }
  }
  return out;
}

/** Answers a request and removes it. */
export async function answerRequest(home: AgentHome, id: string, answer: AgentAnswer): Promise<void> {
  await home.write(at(id, ANSWER), JSON.stringify(answer) + '\n');
  await home.remove(at(id, REQUEST));
}

/** Sends a request and waits for its answer (one line), or refuses when the agent does not answer. */
export async function askAgent(home: AgentHome, req: AgentRequest, who: string, ms = 30_000): Promise<string> {
  const id = await sendRequest(home, req);
  const answer = await awaitAnswer(home, id, ms);
  if (!answer) throw new UserError(`${req.verb}: the agent (${who}) did not answer within ${ms / 1000}s; make agent-status shows how it is`);
  if (!answer.ok) throw new UserError(`${req.verb}: ${req.run_id}: ${answer.message}`);
  return answer.message;
}

/**
 * The run as recorded once none of its units is live any more, or as it is after `ms`. An agent
 * in a store may write it from another machine: then it is read from the store.
 */
export async function untilSettled(project: Project, home: AgentHome, runId: string, ms: number): Promise<RunRecord> {
  const read = async () => (home.kind === 'store' ? loadRun(project, runId, { fresh: true }) : project.db.get(runId)!);
  let run = await read();
  for (const until = Date.now() + ms; hasLiveUnit(run) && Date.now() < until; await sleep(home.kind === 'store' ? 1000 : 250)) run = await read();
  return run;
}
