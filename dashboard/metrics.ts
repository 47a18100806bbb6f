// A unit's metrics.jsonl, every attempt in order, as columns for the chart. A resumed attempt
// starts again from its restored step: its lines replace the earlier attempt's from there on,
// so the x axis stays sorted. The wall-clock axis needs the experiment to write a time field.
import type { Project } from '../scripts/lib/project.js';
import { runKeys, unitKey, type RunRecord } from '../scripts/lib/runs/run-record.js';

const TIME_KEYS = ['time', 'wall_time', 'timestamp', 'ts'];

export interface MetricsColumns {
  /** changes whenever a file grows: the page asks again with it and gets `unchanged` */
  version: string;
  steps: number[];
  /** seconds since the epoch for each step, when the lines carry a time field */
  time: (number | null)[] | null;
  series: Record<string, (number | null)[]>;
}

function seconds(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v > 1e12 ? v / 1000 : v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t / 1000;
  }
  return null;
}

/** Parses metrics lines into columns; lines without a numeric step are numbered on. */
export function metricsColumns(files: Buffer[], version: string): MetricsColumns {
  const bySteps = new Map<number, Record<string, unknown>>();
  let next = 0;
  for (const bytes of files) {
    let firstInFile = true;
    for (const line of bytes.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      let row: Record<string, unknown>;
      try {
        row = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // a line being written, or not JSON
      }
      if (typeof row !== 'object' || row === null) continue;
      const step = typeof row.step === 'number' && Number.isFinite(row.step) ? row.step : next;
      if (firstInFile) {
        // a later attempt takes over from its first step
        for (const s of bySteps.keys()) if (s >= step) bySteps.delete(s);
        firstInFile = false;
      }
      next = step + 1;
      bySteps.set(step, row);
    }
  }
  const steps = [...bySteps.keys()].sort((a, b) => a - b);
  const keys = new Set<string>();
  for (const row of bySteps.values()) for (const [k, v] of Object.entries(row)) if (typeof v === 'number' && k !== 'step' && !TIME_KEYS.includes(k)) keys.add(k);
  const series: MetricsColumns['series'] = {};
  for (const k of keys) series[k] = steps.map((s) => (typeof bySteps.get(s)![k] === 'number' ? (bySteps.get(s)![k] as number) : null));
  const timeKey = TIME_KEYS.find((k) => steps.some((s) => bySteps.get(s)![k] !== undefined));
  const time = timeKey ? steps.map((s) => seconds(bySteps.get(s)![timeKey])) : null;
  return { version, steps, time, series };
}

export async function readMetrics(project: Project, run: RunRecord, unit: number): Promise<MetricsColumns> {
  const attempts = run.units[unit]?.attempts ?? [];
  const files = await Promise.all(attempts.map((a) => project.store.getBytes(runKeys.attemptFile(unitKey(run, unit), a.n, 'metrics.jsonl')).catch(() => null)));
  const present = files.filter((b): b is Buffer => !!b);
  const version = `${attempts.length}-${files.map((b) => b?.length ?? 0).join('.')}`;
  return metricsColumns(present, version);
}
