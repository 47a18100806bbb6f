// What a run cost on hosts with a price: each attempt's hours on a priced inventory host (an
// unfinished one up to `now`) times the host's price_per_hour. Backends that bill elsewhere
// (Batch, SLURM) and hosts without a price add nothing.
import type { Config } from '../config/load-config.js';
import type { RunRecord } from '../runs/run-record.js';

const HOUR_MS = 3_600_000;

/** USD, or null when no attempt ran on a priced host. */
export function runCost(run: Pick<RunRecord, 'units'>, config: Pick<Config, 'hosts'>, now = Date.now()): number | null {
  let total: number | null = null;
  for (const a of run.units.flatMap((u) => u.attempts)) {
    const host = a.handle && (a.handle.backend === 'ssh' || a.handle.backend === 'fleet') ? a.handle.host : undefined;
    const price = typeof host === 'string' ? config.hosts[host]?.price_per_hour : undefined;
    if (price === undefined) continue;
    const ms = (a.ended_at ? Date.parse(a.ended_at) : now) - Date.parse(a.started_at);
    total = (total ?? 0) + (Math.max(0, ms) / HOUR_MS) * price;
  }
  return total;
}
