// Names Google Cloud accepts, made from Switchyard's: label values and job IDs.
import { sha256Hex } from '../hash.js';
import type { AttemptSpec } from '../runner/attempt-spec.js';

/** Label values and job IDs alike hold at most 63 characters. */
const NAME_MAX = 63;

/**
 * A label value for `text` (label values: at most 63 of lowercase letters, digits, `_` and `-`):
 * lowercased, other characters as `_`; a longer one keeps its start and ends in 8 hex of the
 * whole text's SHA-256, so two texts never share a value by being cut alike.
 */
export function labelValue(text: string): string {
  const value = text.toLowerCase().replace(/[^a-z0-9_-]/g, '_');
  return value.length <= NAME_MAX ? value : `${value.slice(0, NAME_MAX - 9)}-${sha256Hex(text).slice(0, 8)}`;
}

/**
 * The Batch job ID of one submission of these units: `sy-<run id>-<hash>` (job IDs: a lowercase
 * letter, then at most 62 of lowercase letters, digits and `-`, not ending in `-`). The hash
 * covers the run and each unit with its attempt number, so submitting the same attempts again
 * names the same job (in any order), which Batch refuses as existing: a submit is idempotent.
 * The supervisor sends a queued attempt again only with the attempts it went with (their group).
 */
export function batchJobId(units: readonly Pick<AttemptSpec, 'run_id' | 'unit_id' | 'attempt'>[]): string {
  const what = units.map((u) => `${u.run_id} ${u.unit_id} ${u.attempt}`).sort().join('\n');
  const hash = sha256Hex(what).slice(0, 10);
  const run = (units[0]?.run_id ?? '').toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return `sy-${run.slice(-(NAME_MAX - 'sy-'.length - hash.length - 1))}-${hash}`;
}
