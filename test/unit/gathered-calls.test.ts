// GatheredCalls: the calls of one script made in one turn go as one, their arguments in the
// order they came; a later turn is a call of its own; past GATHERED_ARGS_MAX bytes of
// arguments the turn's calls make another, so no call outgrows one exec.
import { describe, expect, it } from 'vitest';
import { GATHERED_ARGS_MAX, GatheredCalls } from '../../scripts/lib/slurm/gathered-calls.js';
import type { ShResult } from '../../scripts/lib/slurm/login-node.js';

function recordingLogin() {
  const calls: { script: string; args: readonly string[] }[] = [];
  return {
    calls,
    async sh(script: string, args: readonly string[]): Promise<ShResult> {
      calls.push({ script, args });
      return { code: 0, stdout: `${calls.length}`, stderr: '' };
    },
  };
}

describe('GatheredCalls', () => {
  it('one call a script and lead per turn, arguments in order, the outcome shared', async () => {
    const login = recordingLogin();
    const gathered = new GatheredCalls(login);
    const outcomes = await Promise.all([gathered.call('s', ['stop'], ['a', '1']), gathered.call('s', ['kill'], ['b', '2']), gathered.call('s', ['stop'], ['c', '3'])]);
    expect(login.calls).toEqual([
      { script: 's', args: ['stop', 'a', '1', 'c', '3'] },
      { script: 's', args: ['kill', 'b', '2'] },
    ]);
    expect(outcomes.map((o) => o.stdout)).toEqual(['1', '2', '1']);
    await gathered.call('s', ['stop'], ['d', '4']);
    expect(login.calls.at(-1)).toEqual({ script: 's', args: ['stop', 'd', '4'] });
  });

  it('a turn past the limit makes calls each within it, every argument once, in order', async () => {
    const login = recordingLogin();
    const gathered = new GatheredCalls(login);
    const pairs = Array.from({ length: 1500 }, (_, i) => [`/home/researcher/switchyard/scratch/run-20261203T1400-0123abcd/shards/${i}/attempts/1`, `4711_${i}`]);
    await Promise.all(pairs.map((p) => gathered.call('s', ['stop'], p)));
    expect(login.calls.length).toBeGreaterThan(1);
    for (const c of login.calls) {
      expect(c.args[0]).toBe('stop');
      expect(c.args.slice(1).reduce((n, a) => n + Buffer.byteLength(a) + 3, 0)).toBeLessThanOrEqual(GATHERED_ARGS_MAX);
    }
    expect(login.calls.flatMap((c) => c.args.slice(1))).toEqual(pairs.flat());
  });
});
