// How a finished merge reads in a terminal.
import type { MergeSummary } from '../actions/merge.js';

/** The merge report for people: per-shard counts and hashes, and which shards moved. */
export function describeMerge(s: MergeSummary, where: string): string[] {
  const lines = [`merged ${s.shards.length} shards (${s.strategy}) into ${where}: ${s.merged.records !== null ? `${s.merged.records} records, ` : ''}sha256 ${s.merged.sha256.slice(0, 12)} (${s.took_sec}s)`];
  for (const r of s.shards) {
    const moved = r.moved_from.length ? `  moved from ${r.moved_from.join(', ')}` : '';
    lines.push(`  shard ${r.index}: ${r.records} records on ${r.host ?? '-'}, ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}, ${r.elapsed_sec ?? '-'}s, sha256 ${r.sha256.slice(0, 12)}${moved}`);
  }
  const moved = s.shards.filter((r) => r.moved_from.length);
  lines.push(moved.length ? `moved: ${moved.map((r) => `shard ${r.index} ${r.moved_from.join('→')}→${r.host}`).join(', ')}` : 'moved: none');
  return lines;
}
