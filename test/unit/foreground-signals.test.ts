import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Backend } from '../../scripts/lib/backends/backend.js';
import { ForegroundSignals } from '../../scripts/lib/cli/signals.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';
import type { Supervisor } from '../../scripts/lib/runs/supervisor.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let kept: Map<string, NodeJS.SignalsListener[]>;

beforeEach(() => {
  kept = new Map(SIGNALS.map((s) => [s, process.listeners(s)]));
});
afterEach(() => {
  for (const s of SIGNALS) {
    process.removeAllListeners(s);
    for (const l of kept.get(s)!) process.on(s, l);
  }
  vi.restoreAllMocks();
});

function opened() {
  const stops: object[] = [];
  const supervisor = { stop: (opts: object = {}) => void stops.push(opts), detach: () => {}, isDetached: false } as unknown as Supervisor;
  const run = { run_id: 'r', sharded: false, units: [], spec: { train: { grace_sec: 60 } } } as unknown as RunRecord;
  const backend = { name: 'local', attemptsInProcess: true } as unknown as Backend;
  return { stops, event: { type: 'opened' as const, how: 'new' as const, run, backend, supervisor } };
}

describe('ForegroundSignals', () => {
  it('ends the verb at a signal before any run is chosen: nothing has started', () => {
    vi.spyOn(process, 'exit').mockImplementation(((code: number) => {
      throw new Error(`exit ${code}`);
    }) as never);
    const said: string[] = [];
    new ForegroundSignals((l) => said.push(l), () => '');
    expect(() => process.emit('SIGTERM', 'SIGTERM')).toThrow('exit 143');
    expect(said).toEqual(['SIGTERM: stopped before any run was opened; nothing was started']);
  });

  it('holds a signal that comes while a chosen run opens, and stops the run once it is open', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => {}) as never);
    const said: string[] = [];
    const signals = new ForegroundSignals((l) => said.push(l), () => '');
    signals.follow({ type: 'opening' });
    process.emit('SIGINT', 'SIGINT');
    const { stops, event } = opened();
    expect(said).toEqual([]);
    signals.follow(event);
    expect(exit).not.toHaveBeenCalled();
    expect(stops).toEqual([{}]);
    expect(said[0]).toMatch(/^stopping: the experiment has 60s to exit/);
  });
});
