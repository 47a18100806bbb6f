// The runs table's rows: listRuns (the same call as make status) flattened to what the table
// shows, filtered and sorted on the server so a page of 5,000 runs sends only what is seen.
// Concurrent requests share one listRuns call, and a result serves for a second: several tabs
// polling do not each ask every live host.
import { runCost } from '../scripts/lib/actions/cost.js';
import { listRuns, type RunRow } from '../scripts/lib/actions/look.js';
import type { Project } from '../scripts/lib/project.js';
import type { RunSummary } from '../scripts/lib/runs/run-record.js';

export interface RunsRow {
  run_id: string;
  competition: string;
  experiment: string;
  backend: string;
  hosts: string[];
  state: string;
  /** the last attempt's number (a run of one unit) */
  attempt: number | null;
  units: { done: number; total: number };
  sharded: boolean;
  ckpt_step: number | null;
  /** the headline metric: loss when there is one, else the first number besides step */
  metric: { name: string; value: number } | null;
  metrics: Record<string, unknown> | null;
  /** USD on priced hosts (price_per_hour), null elsewhere */
  cost: number | null;
  created_at: string;
}

export const hostOf = (h: Record<string, unknown> | null | undefined): string | null => (typeof h?.host === 'string' ? h.host : null);

export function headline(metrics: Record<string, unknown> | null): RunsRow['metric'] {
  if (!metrics) return null;
  const numbers = Object.entries(metrics).filter((e): e is [string, number] => typeof e[1] === 'number' && e[0] !== 'step');
  const pick = numbers.find(([k]) => k === 'loss') ?? numbers.find(([k]) => /loss/.test(k)) ?? numbers[0];
  return pick ? { name: pick[0], value: pick[1] } : null;
}

/** A step as lastStep reads it from the record: a run of one unit its own, a search the lowest once every shard has one. */
function summaryStep(s: RunSummary): number | null {
  if (!s.steps) return null;
  return s.units === 1 ? s.steps.hi : s.steps.known === s.units ? s.steps.lo : null;
}

/**
 * A table row from the run's summary: listing thousands of runs reads no record. Only the cost
 * needs the attempts: RunsCache.costed fills it in for the rows sent.
 */
export function toRow(r: RunRow): RunsRow {
  const s = r.summary;
  return {
    run_id: s.run_id,
    competition: s.experiment.split('/')[0]!,
    experiment: s.experiment,
    backend: s.backend ?? '-',
    hosts: s.hosts,
    state: r.state,
    attempt: s.units === 1 ? s.attempts || null : null,
    units: r.units,
    sharded: s.sharded,
    ckpt_step: summaryStep(s),
    metric: headline(r.metrics),
    metrics: r.metrics,
    cost: null,
    created_at: s.created_at,
  };
}

export interface RunsQuery {
  competition?: string;
  experiment?: string;
  backend?: string;
  state?: string;
  host?: string;
  q?: string;
  sort?: 'created' | 'experiment' | 'state' | 'step' | 'metric' | 'backend';
  dir?: 'asc' | 'desc';
  offset?: number;
  limit?: number;
}

const SORT_KEYS: Record<NonNullable<RunsQuery['sort']>, (r: RunsRow) => string | number> = {
  created: (r) => r.created_at,
  experiment: (r) => r.experiment,
  state: (r) => r.state,
  backend: (r) => r.backend,
  step: (r) => r.ckpt_step ?? -1,
  metric: (r) => r.metric?.value ?? Number.POSITIVE_INFINITY,
};

/** The values each filter can take, over every row: one pass, as the page asks on every refresh. */
function facetsOf(rows: RunsRow[]) {
  const competitions = new Set<string>();
  const backends = new Set<string>();
  const states = new Set<string>();
  const hosts = new Set<string>();
  for (const r of rows) {
    competitions.add(r.competition);
    if (r.backend.includes(',')) for (const b of r.backend.split(',')) backends.add(b);
    else backends.add(r.backend);
    states.add(r.state);
    for (const h of r.hosts) hosts.add(h);
  }
  const sorted = (set: Set<string>) => [...set].sort();
  return { competitions: sorted(competitions), backends: sorted(backends), states: sorted(states), hosts: sorted(hosts) };
}

export function queryRows(rows: RunsRow[], q: RunsQuery) {
  const facets = facetsOf(rows);
  const needle = q.q?.toLowerCase();
  const filtered = q.competition || q.experiment || q.backend || q.state || q.host || needle;
  const kept = !filtered
    ? [...rows]
    : rows.filter(
        (r) =>
          (!q.competition || r.competition === q.competition) &&
          (!q.experiment || r.experiment === q.experiment) &&
          (!q.backend || r.backend.split(',').includes(q.backend)) &&
          (!q.state || r.state === q.state) &&
          (!q.host || r.hosts.includes(q.host)) &&
          (!needle || r.run_id.toLowerCase().includes(needle) || r.experiment.includes(needle)),
      );
  const key = SORT_KEYS[q.sort ?? 'created'];
  const sign = (q.dir ?? (q.sort && q.sort !== 'created' ? 'asc' : 'desc')) === 'asc' ? 1 : -1;
  kept.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * sign || (a.run_id < b.run_id ? 1 : -1);
  });
  const offset = q.offset ?? 0;
  const limit = q.limit ?? 100;
  return { total: kept.length, offset, rows: kept.slice(offset, offset + limit), facets };
}

/** listRuns, shared by concurrent callers and kept for `ttlMs`. */
export class RunsCache {
  private pending: Promise<RunsRow[]> | null = null;
  private at = 0;
  private value: RunsRow[] = [];
  private sources = new Map<string, RunRow>();
  /** rows of runs with nothing live, by their summary */
  private settledRows = new WeakMap<RunSummary, RunsRow>();

  constructor(
    private readonly project: Project,
    private readonly ttlMs = 1000,
  ) {
    project.db.keepSummariesParsed(); // this lists again every second: unchanged runs are parsed once
  }

  async rows(): Promise<RunsRow[]> {
    if (Date.now() - this.at < this.ttlMs) return this.value;
    this.pending ??= listRuns(this.project)
      .then((rows) => {
        this.value = rows.map((r) => {
          if (r.summary.live.length) return toRow(r); // its state and metrics come from a poll
          // The index hands back the same summary while a run's record is unchanged: so is its row.
          let row = this.settledRows.get(r.summary);
          if (!row) this.settledRows.set(r.summary, (row = toRow(r)));
          return row;
        });
        this.sources = new Map(rows.map((r) => [r.summary.run_id, r]));
        this.at = Date.now();
        return this.value;
      })
      .finally(() => (this.pending = null));
    return this.pending;
  }

  /** The rows with their cost: a run's attempts are read only for the rows sent, and only where the inventory prices one of its hosts. */
  costed(rows: RunsRow[]): RunsRow[] {
    const { hosts } = this.project.config;
    return rows.map((row) => {
      const source = this.sources.get(row.run_id);
      return source && row.hosts.some((h) => hosts[h]?.price_per_hour !== undefined) ? { ...row, cost: runCost(source.run, this.project.config) } : row;
    });
  }

  /** Forget the cached rows (after an action changed a run). */
  invalidate(): void {
    this.at = 0;
  }
}
