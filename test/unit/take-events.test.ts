import { describe, expect, it } from 'vitest';
import type { RunnerEvent } from '../../scripts/lib/runner/attempt-spec.js';
import { queuedAttempt, takeEvents, type EventContext, type Live } from '../../scripts/lib/runs/units.js';

function live(eventsSeen = 0): Live {
  const attempt = { ...queuedAttempt(1, 'local', 'local'), state: 'running' as const, events_seen: eventsSeen };
  return { attempt, eventsRead: eventsSeen, work: Promise.resolve(), pulling: false, inherited: false };
}

function context(): EventContext & { recorded: string[] } {
  const recorded: string[] = [];
  return { unit: 0, tag: { run_id: 'r' }, recorded, record: async (type) => void recorded.push(type), emit: () => {} };
}

describe('takeEvents', () => {
  it('asks for no save for lines that record nothing (a fresh start, a notice)', async () => {
    const l = live();
    const ctx = context();
    const taken = await takeEvents(l, [{ type: 'restored', step: null, attempt: 1 }, { type: 'notice', line: 'hello' }] as RunnerEvent[], ctx);
    expect(taken.save).toBe(false);
    expect(ctx.recorded).toEqual([]);
    expect(l.attempt.events_seen).toBe(2); // read past, saved with the next change
  });

  it('asks for a save when a ledger entry is written or a checkpoint is restored', async () => {
    const committed = await takeEvents(live(), [{ type: 'ckpt.committed', step: 3, manifest: 'm', manifest_sha256: 'h' }] as RunnerEvent[], context());
    expect(committed).toMatchObject({ save: true, committed: true });
    const restored = await takeEvents(live(), [{ type: 'restored', step: 3, attempt: 2 }] as RunnerEvent[], context());
    expect(restored.save).toBe(true);
  });

  it('records nothing an earlier orchestrator recorded', async () => {
    const ctx = context();
    const l = live(1);
    l.eventsRead = 0; // re-attached: reads from the first line again
    await takeEvents(l, [{ type: 'ckpt.committed', step: 1, manifest: 'm', manifest_sha256: 'h' }, { type: 'ckpt.committed', step: 2, manifest: 'm', manifest_sha256: 'h' }] as RunnerEvent[], ctx);
    expect(ctx.recorded).toEqual(['ckpt.committed']);
    expect(l.attempt.last_step).toBe(2);
  });
});
