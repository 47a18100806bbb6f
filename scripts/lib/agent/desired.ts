// The runs the agent carries, and what is wanted of each: finished. `make train` records a run
// here when it opens it (with where to run it: backend, host, fleet, batch entry, cluster), so a
// run whose shell died is carried on; the run's end, a stop, or giving up closes the entry,
// keeping the outcome for `make status`. One small JSON file per run under
// `.switchyard/agent/runs/`, written atomically.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BackendName } from '../config/define-config.js';
import { resumes } from '../runs/failover.js';
import { runState, type RunRecord } from '../runs/run-record.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { agentDir } from './agent-lock.js';

export interface DesiredRun {
  run_id: string;
  backend: BackendName;
  host?: string;
  fleet?: string;
  batch?: string;
  cluster?: string;
  /** when it was asked for */
  since: string;
  /** units to (re)run, finished or not (make retry); absent: every unfinished one */
  only?: number[];
  /** the slot (host) those start on */
  slot?: string;
  /** set once nothing more is wanted: how it ended, when, and why */
  closed?: { state: string; at: string; reason: string | null };
}

const dir = (stateDir: string) => path.join(agentDir(stateDir), 'runs');
const file = (stateDir: string, runId: string) => path.join(dir(stateDir), `${runId}.json`);

export function desiredRun(stateDir: string, runId: string): DesiredRun | null {
  try {
    return JSON.parse(readFileSync(file(stateDir, runId), 'utf8')) as DesiredRun;
  } catch {
    return null;
  }
}

/** Every run asked for, open or closed. */
export function desiredRuns(stateDir: string): DesiredRun[] {
  let names: string[];
  try {
    names = readdirSync(dir(stateDir)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((f) => desiredRun(stateDir, f.slice(0, -'.json'.length))).filter((d): d is DesiredRun => !!d);
}

/** Asks for a run to be finished (again: a closed entry opens). */
export async function wantRun(stateDir: string, d: Omit<DesiredRun, 'since' | 'closed'>): Promise<void> {
  mkdirSync(dir(stateDir), { recursive: true });
  const clean = Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined));
  await writeFileAtomically(file(stateDir, d.run_id), JSON.stringify({ ...clean, since: new Date().toISOString() }, null, 2) + '\n');
}

/** Nothing more is wanted of a run: it finished, was stopped, or was given up on. */
export async function closeRun(stateDir: string, runId: string, state: string, reason: string | null): Promise<void> {
  const d = desiredRun(stateDir, runId);
  if (!d || d.closed) return;
  await writeFileAtomically(file(stateDir, runId), JSON.stringify({ ...d, closed: { state, at: new Date().toISOString(), reason } }, null, 2) + '\n');
}

/** Whether a run has nothing left to do: every unit succeeded, or its last attempt ended in a way that does not resume. */
export function settledState(run: RunRecord): { done: boolean; state: string; reason: string | null } {
  const state = runState(run);
  if (state === 'succeeded') return { done: true, state, reason: null };
  if (!run.units.length) return { done: false, state, reason: null };
  for (const u of run.units) {
    const last = u.attempts.at(-1);
    if (!last || last.state === 'succeeded') continue;
    if (!['failed', 'cancelled', 'timeout'].includes(last.state) || resumes(last, u.attempts, run.spec)) return { done: false, state, reason: null };
  }
  const last = run.units.map((u) => u.attempts.at(-1)).find((a) => a && a.state !== 'succeeded');
  return { done: true, state, reason: last?.reason ?? null };
}
