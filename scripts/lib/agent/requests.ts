// What other processes ask of the agent (make stop, make retry, the dashboard): one JSON file per
// request under `.switchyard/agent/requests/`, answered by a `<id>.answer.json` beside it. The
// agent is the one writer of the runs it drives; everyone else reads and asks.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Project } from '../project.js';
import type { RunRecord } from '../runs/run-record.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import { agentDir } from './agent-lock.js';

export type AgentRequest =
  | { verb: 'stop'; run_id: string; force?: boolean; units?: number[] }
  | { verb: 'retry'; run_id: string; units?: number[]; host?: string };

export interface AgentAnswer {
  ok: boolean;
  /** what happened, one line */
  message: string;
}

const dir = (stateDir: string) => path.join(agentDir(stateDir), 'requests');

/** Leaves a request for the agent; returns its id. */
export async function sendRequest(stateDir: string, req: AgentRequest): Promise<string> {
  mkdirSync(dir(stateDir), { recursive: true });
  const id = `${Date.now()}-${randomBytes(4).toString('hex')}`;
  await writeFileAtomically(path.join(dir(stateDir), `${id}.request.json`), JSON.stringify(req) + '\n');
  return id;
}

/** The agent's answer to a request, once it has one; null past `ms`. */
export async function awaitAnswer(stateDir: string, id: string, ms: number): Promise<AgentAnswer | null> {
  const file = path.join(dir(stateDir), `${id}.answer.json`);
  for (const until = Date.now() + ms; Date.now() < until; await sleep(100)) {
    try {
      const answer = JSON.parse(readFileSync(file, 'utf8')) as AgentAnswer;
      rmSync(file, { force: true });
      return answer;
    } catch {
      // not yet
    }
  }
  return null;
}

/** The requests waiting, oldest first. */
export function pendingRequests(stateDir: string): { id: string; req: AgentRequest }[] {
  let names: string[];
  try {
    names = readdirSync(dir(stateDir)).filter((f) => f.endsWith('.request.json')).sort();
  } catch {
    return [];
  }
  return names.flatMap((f) => {
    try {
      return [{ id: f.slice(0, -'.request.json'.length), req: JSON.parse(readFileSync(path.join(dir(stateDir), f), 'utf8')) as AgentRequest }];
    } catch {
      return []; // being written
    }
  });
}

/** Answers a request and removes it. */
export async function answerRequest(stateDir: string, id: string, answer: AgentAnswer): Promise<void> {
  await writeFileAtomically(path.join(dir(stateDir), `${id}.answer.json`), JSON.stringify(answer) + '\n');
  rmSync(path.join(dir(stateDir), `${id}.request.json`), { force: true });
}

/** Sends a request and waits for its answer (one line), or refuses when the agent does not answer. */
export async function askAgent(stateDir: string, req: AgentRequest, pid: number, ms = 30_000): Promise<string> {
  const id = await sendRequest(stateDir, req);
  const answer = await awaitAnswer(stateDir, id, ms);
  if (!answer) throw new UserError(`${req.verb}: the agent (pid ${pid}) did not answer within ${ms / 1000}s; make agent-status shows how it is`);
  if (!answer.ok) throw new UserError(`${req.verb}: ${req.run_id}: ${answer.message}`);
  return answer.message;
}

const live = (run: RunRecord) => run.units.some((u) => ['running', 'pending', 'queued'].includes(u.attempts.at(-1)?.state ?? ''));

/** The run as recorded once none of its units is live any more, or as it is after `ms`. */
export async function untilSettled(project: Project, runId: string, ms: number): Promise<RunRecord> {
  let run = project.db.get(runId)!;
  for (const until = Date.now() + ms; live(run) && Date.now() < until; await sleep(250)) run = project.db.get(runId) ?? run;
  return run;
}
