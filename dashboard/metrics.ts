// A unit's metrics.jsonl, every attempt in order, as columns for the chart. A resumed attempt
// starts again from its restored step: its lines replace the earlier attempt's from there on,
// so the x axis stays sorted. The wall-clock axis needs the experiment to write a time field:
// the experiment appends to its metrics file itself, so nothing stands between to stamp lines.
import { unitMetrics } from '../scripts/lib/actions/metrics.js';
import type { Project } from '../scripts/lib/project.js';
import type { RunRecord } from '../scripts/lib/runs/run-record.js';

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

/** A unit's metrics as columns, a running attempt's read live where it runs (unitMetrics). */
export async function readMetrics(project: Project, run: RunRecord, unit: number): Promise<MetricsColumns & { live: boolean }> {
  const files = await unitMetrics(project, run, unit);
  const version = `${files.length}-${files.map((f) => `${f.live ? 'l' : ''}${f.bytes?.length ?? 0}`).join('.')}`;
  return { ...metricsColumns(files.flatMap((f) => (f.bytes ? [f.bytes] : [])), version), live: files.some((f) => f.live) };
}
