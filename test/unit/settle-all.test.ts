import { describe, expect, it } from 'vitest';
import { settleAll } from '../../scripts/lib/settle-all.js';

describe('settleAll', () => {
  it('gives every value in order', async () => {
    const [a, b] = await settleAll([Promise.resolve(1), Promise.resolve('two')]);
    expect([a, b]).toEqual([1, 'two']);
  });

  it('rejects with the first failure only after every promise has settled', async () => {
    let finish!: () => void;
    let slowDone = false;
    const slow = new Promise<void>((resolve) => (finish = resolve)).then(() => void (slowDone = true));
    const outcome = settleAll([Promise.reject(new Error('first')), slow, Promise.reject(new Error('second'))]).then(
      () => 'resolved',
      (err: Error) => (slowDone ? err.message : 'rejected while a write was in flight'),
    );
    await new Promise((r) => setImmediate(r)); // Promise.all would have rejected by now
    finish();
    expect(await outcome).toBe('first');
  });
});
