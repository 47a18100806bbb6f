// The words a verb uses about a run as it goes: the live status line, the line at an
// attempt's start, and what a resume will do. Pure, so tests read them as users do.
import { formatDuration } from '../ui/format.js';

/** What a resume of a run does, by the newest step it committed. */
export function resumeOutlook(step: number | null): string {
  return step === null ? 'starts it over from the beginning (no checkpoint committed)' : `resumes it from checkpoint step ${step}`;
}

/** The line for an attempt's start: what it restored, and for one that restored nothing, what a resume will do. */
export function restoredLine(step: number | null, attempt: number | 'predict' | undefined): string {
  if (attempt === 'predict') return step === null ? 'predicting without a checkpoint (the run committed none)' : `restoring committed checkpoint step ${step}`;
  if (step !== null) return `resuming from committed checkpoint step ${step}`;
  if (attempt !== undefined && attempt > 1) return 'starting over from the beginning: no earlier attempt committed a checkpoint';
  return 'starting from scratch (no checkpoint yet: until the experiment commits one, a resume starts over from the beginning)';
}

/** The live status line of an attempt: its newest metrics (step, loss) and checkpoint, leaving out what is not known. */
export function statusText(u: { attempt: number | null; metrics: Record<string, unknown> | null; ckpt: number | null; started_at: string | null }, now = Date.now()): string {
  const m = u.metrics ?? {};
  const parts = [`▸ attempt ${u.attempt ?? '-'}`];
  if (typeof m.step === 'number' || typeof m.step === 'string') parts.push(`step ${m.step}`);
  if (typeof m.loss === 'number') parts.push(`loss ${m.loss.toPrecision(4)}`);
  parts.push(u.ckpt === null ? 'no checkpoint yet' : `ckpt ${u.ckpt}`);
  if (u.started_at) parts.push(formatDuration(now - Date.parse(u.started_at)));
  return parts.join(' · ');
}
