// What the ledger says should be in the store, folded entry by entry.
import { describe, expect, it } from 'vitest';
import { LedgerState } from '../../scripts/lib/audit/ledger-state.js';
import type { LedgerEntry } from '../../scripts/lib/ledger/format.js';

let seq = 0;
const e = (type: string, fields: Record<string, unknown>): LedgerEntry => ({ seq: ++seq, ts: 't', type, prev: '0'.repeat(64), ...fields });
const commit = (step: number, shard?: number) => e('ckpt.committed', { run_id: 'r', ...(shard === undefined ? {} : { shard }), step, manifest: `m${step}`, manifest_sha256: 'h' });

describe('LedgerState', () => {
  it('keeps live steps per run and shard, with the attempt that committed them', () => {
    seq = 0;
    const s = new LedgerState();
    for (const entry of [
      e('run.created', { run_id: 'r', digest: 'd', pins: {} }),
      e('attempt.started', { run_id: 'r', attempt: 1 }),
      commit(1),
      commit(2),
      e('ckpt.pruned', { run_id: 'r', step: 1 }),
      e('attempt.started', { run_id: 'r', attempt: 2 }),
      commit(3),
      e('ckpt.lost', { run_id: 'r', step: 2, host: 'h' }),
      commit(2), // the same step committed again, by attempt 2
      e('ckpt.abandoned', { run_id: 'r', step: 3, reason: 'x', removed: 0 }),
      e('attempt.started', { run_id: 'r', shard: 1, attempt: 1 }),
      commit(2, 1),
    ]) s.add(entry);
    expect(s.liveSteps('r').map((x) => [x.step, x.attempt, x.line])).toEqual([[2, 2, 9]]);
    expect(s.liveSteps('r/shards/1').map((x) => [x.step, x.shard, x.attempt])).toEqual([[2, 1, 1]]);
    expect([1, 2, 3].map((n) => s.retiredAs('r', n))).toEqual(['pruned', undefined, 'abandoned']);
    s.add(e('ckpt.removed', { run_id: 'r', step: 1, reason: 'x', removed: 1 }));
    expect(s.retiredAs('r', 1)).toBeUndefined();
    expect(s.liveSteps().map((x) => x.unit)).toEqual(['r', 'r/shards/1']);
    expect(s.runs.get('r')?.line).toBe(1);
  });

  it('keeps the newest recorded hash of each output, shard outputs and the merged file by their store keys', () => {
    seq = 0;
    const s = new LedgerState();
    s.add(e('outputs.saved', { run_id: 'r', files: [{ path: 'a.csv', sha256: '1' }, { path: 'm.json', sha256: '2' }] }));
    s.add(e('outputs.saved', { run_id: 'r', files: [{ path: 'a.csv', sha256: '3' }] }));
    s.add(e('outputs.saved', { run_id: 'r', shard: 0, files: [{ path: 'shard-0-of-2.jsonl', sha256: '4' }] }));
    s.add(e('merge.completed', { run_id: 'r', output: 'runs/r/outputs/merged.jsonl', sha256: '5', records: 3, shards: 2 }));
    expect([...s.outputs.values()].map((o) => [o.key, o.name, o.sha256, o.line])).toEqual([
      ['runs/r/outputs/a.csv', 'outputs/a.csv', '3', 2],
      ['runs/r/outputs/m.json', 'outputs/m.json', '2', 1],
      ['runs/r/shards/0/outputs/shard-0-of-2.jsonl', 'shard 0 outputs/shard-0-of-2.jsonl', '4', 3],
      ['runs/r/outputs/merged.jsonl', 'outputs/merged.jsonl', '5', 4],
    ]);
  });
});
