// A unit's metrics.jsonl, attempt by attempt: a running attempt's read where it runs (its local
// folder, or the host over SFTP on the pooled connection), so a chart is as fresh as the file;
// the others, and a running one whose file cannot be read there, from the store, which has them
// as of the attempt's last checkpoint.
import { backendForHandle } from '../backends/index.js';
import type { Project } from '../project.js';
import { runKeys, unitKey, type RunRecord } from '../runs/run-record.js';

export interface AttemptMetrics {
  n: number;
  /** null: no metrics file yet */
  bytes: Buffer | null;
  /** read where the attempt runs, not from the store */
  live: boolean;
}

export async function unitMetrics(project: Project, run: RunRecord, unit: number): Promise<AttemptMetrics[]> {
  const attempts = run.units[unit]?.attempts ?? [];
  return Promise.all(
    attempts.map(async (a) => {
      if (a.handle && (a.state === 'running' || a.state === 'pending')) {
        const backend = await backendForHandle(project, a.handle).catch(() => null);
        const bytes = await backend?.readAttemptFile?.(a.handle, 'metrics.jsonl');
        if (bytes) return { n: a.n, bytes, live: true };
      }
      const bytes = await project.store.getBytes(runKeys.attemptFile(unitKey(run, unit), a.n, 'metrics.jsonl')).catch(() => null);
      return { n: a.n, bytes, live: false };
    }),
  );
}
