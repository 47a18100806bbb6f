// Looking at runs without touching them: each live unit asked for its state, one round trip per
// slot, nothing recorded (the process that follows the run records). For make status and the
// dashboard.
import { backendForHandle } from '../backends/index.js';
import type { Backend, Handle, PollResult } from '../backends/backend.js';
import type { Project } from '../project.js';
import { summaryState, unitState, type AttemptRecord, type RunRecord, type RunState, type RunSummary } from '../runs/run-record.js';
import type { UnitView } from '../runs/supervision.js';

const isLive = (a: AttemptRecord | undefined) => !!a?.handle && (a.state === 'running' || a.state === 'pending');

/** Polls the given handles, grouped so each backend slot gets one call; null where none could be asked. */
async function pollAll(project: Project, attempts: Pick<AttemptRecord, 'handle' | 'events_seen'>[]): Promise<(PollResult | null)[]> {
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
  /** the full record, read from the index when first asked for: a listing needs only `summary` */
  run: RunRecord;
  summary: RunSummary;
  /** the newest metrics line of a run of one unit: live, or as recorded */
  metrics: Record<string, unknown> | null;
  /** the run's state, with its live units asked (a run whose orchestrator died shows lost) */
  state: string;
  units: { done: number; total: number };
  /** the best public score Kaggle gave the run's submissions (make submissions), or null */
  publicScore: number | null;
}

/**
 * A listed run. A class, not an object literal with a getter: a listing makes thousands, and a
 * literal's getter is a closure of its own each.
 */
class ListedRun implements RunRow {
  private record: RunRecord | undefined;

  constructor(
    private readonly project: Project,
    readonly summary: RunSummary,
    readonly metrics: Record<string, unknown> | null,
    readonly state: string,
    readonly units: { done: number; total: number },
    readonly publicScore: number | null,
  ) {}

  get run(): RunRecord {
    return (this.record ??= this.project.db.get(this.summary.run_id)!);
  }
}

/** Every run (or one experiment's), newest first, live ones asked for their state. */
export async function listRuns(project: Project, experiment?: string): Promise<RunRow[]> {
  const summaries = project.db.summaries(experiment);
  const live = summaries.flatMap((s) => s.live);
  const polled = live.length ? await pollAll(project, live) : [];
  const at = new Map(live.map((l, i) => [l, i]));
  const stateNow = (l: RunSummary['live'][number]) => {
    const p = polled[at.get(l)!];
    return p ? (p.unanswered ? 'unreachable' : p.state) : 'unknown';
  };
  return summaries.map((summary) => {
    const units = { done: summary.states.succeeded ?? 0, total: summary.units };
    const publicScore = summary.public_score ?? null;
    const only = summary.units === 1;
    if (!summary.live.length) {
      // Nothing to ask: the state is the one recorded (most runs of a long listing).
      const state = only ? (Object.keys(summary.states)[0] as RunState) : summaryState(summary);
      return new ListedRun(project, summary, summary.metrics, state, units, publicScore);
    }
    const liveNow = summary.live.map(stateNow);
    const anyLive = liveNow.find((s) => s === 'running' || s === 'pending' || s === 'unreachable');
    const livePoll = only ? polled[at.get(summary.live[0]!)!] : null;
    const state = anyLive ?? (only ? liveNow[0]! : summaryState(summary));
    return new ListedRun(project, summary, livePoll?.metrics ?? summary.metrics, state, units, publicScore);
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
    const state = byUnit.has(i) ? (poll ? (poll.unanswered ? 'unreachable' : poll.state) : 'unknown') : unitState(run, u);
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
