// Short human descriptions of runs and pins for verb output.
import type { Pins } from '../pins/digest.js';
import { formatBytes } from '../ui/format.js';
import { plural } from '../ui/plural.js';

export function describePins(p: Pins): string {
  const code = `${p.code.commit.slice(0, 7)}${p.code.dirty_sha256 ? `+dirty ${p.code.dirty_sha256.slice(0, 8)}` : ''}`;
  const data = `${p.data.root.slice(0, 8)} (${plural(p.data.files, 'file')}, ${formatBytes(p.data.bytes)})`;
  return `code ${code} · data ${data} · env ${p.env.lock_sha256.slice(0, 8)} · config ${p.config.slice(0, 8)} · seed ${p.seed}`;
}

/** The exit code of a verb that ran an attempt to its end. */
export function exitCodeFor(state: string, experimentExit: number | null): number {
  switch (state) {
    case 'succeeded':
      return 0;
    case 'failed':
      return experimentExit && experimentExit > 0 ? experimentExit : 1;
    case 'cancelled':
      return 130;
    case 'preempted':
      return 143;
    default:
      return 1;
  }
}
