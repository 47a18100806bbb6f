// Looking at runs without touching them: each live unit asked for its state, one round trip per
// slot, nothing recorded (the process that follows the run records). For make status and the
// dashboard.
import { backendForHandle } from '../backends/index.js';
import type { Backend, Handle, PollResult } from '../backends/backend.js';
import path from 'node:path';
import { bestPublicScore, listSubmissions, lowerIsBetter } from '../kaggle/submission-record.js';
import { mapLimit } from '../map-limit.js';
import type { Project } from '../project.js';
import { loadChallenge } from '../spec/challenge.js';
import { runState, type AttemptRecord, type RunRecord } from '../runs/run-record.js';
import type { UnitView } from '../runs/supervision.js';

const isLive = (a: AttemptRecord | undefined) => !!a?.handle && (a.state === 'running' || a.state === 'pending');

/** Polls the given handles, grouped so each backend slot gets one call; null where none could be asked. */
async function pollAll(project: Project, attempts: AttemptRecord[]): Promise<(PollResult | null)[]> {
  const handles: Handle[] = attempts.map((a) => a.handle!);
  const backends = new Map<string, Promise<Backend | null>>();
  const groups = new Map<string, { backend: Backend; at: number[] }>();
  const out: (PollResult | null)[] = handles.map(() => null);
  for (const [i, h] of handles.entries()) {
    const key = JSON.stringify([h.backend, h.host ?? null, h.fleet ?? null, h.entry ?? null]);
    if (!backends.has(key)) backends.set(key, backendForHandle(project, h).catch(() => null));
    const backend = await backends.get(key)!;
    if (!backend) continue;
    const group = `${key}\0${backend.slotOf(h)}`;
    const g = groups.get(group) ?? { backend, at: [] };
    g.at.push(i);
    groups.set(group, g);
  }
  await Promise.all(
    [...groups.values()].map(async ({ backend, at }) => {
      const results = await backend.pollMany(at.map((i) => ({ handle: handles[i]!, eventsFrom: attempts[i]!.events_seen }))).catch(() => null);
      at.forEach((i, k) => (out[i] = results?.[k] ?? null));
    }),
  );
  return out;
}

export interface RunRow {
  run: RunRecord;
  /** the newest metrics line of a run of one unit: live, or as recorded */
  metrics: Record<string, unknown> | null;
  /** the run's state, with its live units asked (a run whose orchestrator died shows lost) */
  state: string;
  units: { done: number; total: number };
  /** the best public score Kaggle gave the run's submissions (make submissions), or null */
  publicScore: number | null;
}

/** Each finished run's best public score on Kaggle, by run id; the metric's name says which way is better. */
async function publicScores(project: Project, runs: RunRecord[]): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  const higherIsBetter = new Map<string, boolean>();
  await mapLimit(runs.filter((r) => runState(r) === 'succeeded'), 8, async (run) => {
    const records = (await listSubmissions(project.store, run.run_id)).map((s) => s.record);
    if (!records.some((r) => r.public_score !== null)) return;
    const slug = run.experiment.split('/')[0]!;
    if (!higherIsBetter.has(slug)) {
      let metric: string | null = null;
      try {
        metric = loadChallenge(path.join(project.root, 'competitions', slug), `competitions/${slug}`).metric;
      } catch {
        // a competition folder gone or broken: the larger score is shown
      }
      higherIsBetter.set(slug, !lowerIsBetter(metric));
    }
    out.set(run.run_id, bestPublicScore(records, higherIsBetter.get(slug)));
  });
  return out;
}

/** Every run (or one experiment's), newest first, live ones asked for their state. */
export async function listRuns(project: Project, experiment?: string): Promise<RunRow[]> {
  const runs = project.db.list(experiment);
  const live = runs.flatMap((run) => run.units.map((u) => ({ run, last: u.attempts.at(-1) })).filter((x) => isLive(x.last)));
  const polled = await pollAll(project, live.map((x) => x.last!));
  const liveState = new Map(live.map((x, i) => [x.last!, polled[i] ? (polled[i]!.unanswered ? 'unreachable' : polled[i]!.state) : 'unknown']));
  const scores = await publicScores(project, runs);
  return runs.map((run) => {
    const states = run.units.map((u) => liveState.get(u.attempts.at(-1)!) ?? u.attempts.at(-1)?.state ?? 'created');
    const anyLive = states.find((s) => s === 'running' || s === 'pending' || s === 'unreachable');
    const last = run.units.length === 1 ? run.units[0]!.attempts.at(-1) : undefined;
    const livePoll = last ? live.findIndex((x) => x.last === last) : -1;
    return {
      run,
      metrics: (livePoll >= 0 ? polled[livePoll]?.metrics : null) ?? last?.metrics ?? null,
      state: anyLive ?? (run.units.length === 1 ? states[0]! : runState(run)),
      units: { done: run.units.filter((u) => u.attempts.at(-1)?.state === 'succeeded').length, total: run.units.length },
      publicScore: scores.get(run.run_id) ?? null,
    };
  });
}

/** One run's units as they are now. */
export async function lookAtUnits(project: Project, run: RunRecord): Promise<UnitView[]> {
  const lasts = run.units.map((u) => u.attempts.at(-1));
  const liveIdx = lasts.flatMap((a, i) => (isLive(a) ? [i] : []));
  const polled = await pollAll(project, liveIdx.map((i) => lasts[i]!));
  const byUnit = new Map(liveIdx.map((i, k) => [i, polled[k]]));
  return run.units.map((u, i) => {
    const last = lasts[i];
    const poll = byUnit.get(i);
    const state = byUnit.has(i) ? (poll ? (poll.unanswered ? 'unreachable' : poll.state) : 'unknown') : (last?.state ?? 'created');
    return {
      unit: u.index,
      backend: last?.backend ?? '-',
      slot: typeof last?.handle?.host === 'string' ? last.handle.host : last ? last.backend : null,
      state,
      attempt: last?.n ?? null,
      step: poll?.metrics?.step ?? null,
      // steps committed since the record was last written (a detached run has no one writing it)
      ckpt: (poll?.events ?? []).reduce((step, e) => (e?.type === 'ckpt.committed' ? e.step : step), last?.last_step ?? null),
      started_at: last?.started_at ?? null,
      ended_at: last?.ended_at ?? null,
      last_line: poll?.last_line ?? null,
      metrics: poll?.metrics ?? null,
    };
  });
}
