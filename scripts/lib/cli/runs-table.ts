// make status's table of runs: one row per run, newest first, as listRuns gives them. Reads
// only each run's summary, so the table of thousands of runs parses no run records.
import type { RunRow } from '../actions/look.js';
import type { RunSummary } from '../runs/run-record.js';
import { renderTable } from '../ui/table.js';

/** An ISO time as `YYYY-MM-DD HH:MM:SS`, or null. */
export const when = (iso: string | null) => (iso ? iso.slice(0, 19).replace('T', ' ') : null);

/** The newest committed step of each unit, as one value or a range. */
function ckptOf({ steps, units }: RunSummary): string | null {
  if (!steps) return null;
  return steps.lo === steps.hi && steps.known === units ? String(steps.lo) : `${steps.known < units ? '-' : steps.lo}..${steps.hi}`;
}

/** `wanted`, when given, adds what is wanted of each run (make agent's view) as the last column. */
export function runsTable(rows: readonly RunRow[], wanted?: (runId: string) => string): string {
  const table = rows.map(({ summary: s, state, units, metrics }) => {
    const backend = s.fleet ? `fleet ${s.fleet}` : (s.backend ?? '-');
    const step = typeof metrics?.step === 'number' || typeof metrics?.step === 'string' ? metrics.step : null;
    const loss = typeof metrics?.loss === 'number' ? metrics.loss.toPrecision(4) : null;
    const created = `${s.created_at.slice(0, 10)} ${s.created_at.slice(11, 16)}`;
    const row = [s.run_id, s.experiment, s.sharded ? `${state} (${units.done}/${units.total} shards)` : state, s.attempts, backend, step, loss, ckptOf(s), s.public_score ?? null, created];
    if (wanted) row.push(wanted(s.run_id));
    return row;
  });
  return renderTable(['RUN', 'EXPERIMENT', 'STATE', 'ATTEMPTS', 'BACKEND', 'STEP', 'LOSS', 'CKPT STEP', 'PUBLIC', 'CREATED (UTC)', ...(wanted ? ['WANTED'] : [])], table);
}
