// The local backend's wait for a change ends with its caller: a wait the supervisor no longer
// needs must leave no timer behind, or every `make train` stays open for a whole tick.
import { expect, it } from 'vitest';
import { LocalBackend } from '../../scripts/lib/backends/local.js';
import type { Store } from '../../scripts/lib/store/store.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

it('a wait whose caller aborts returns at once and leaves no timer', async () => {
  const backend = new LocalBackend({ root: '/nonexistent', store: {} as Store, workDir: () => '/nonexistent' });
  const before = timers();
  const caller = new AbortController();
  const waiting = backend.waitForChange(60_000, caller.signal);
  expect(timers()).toBe(before + 1);
  caller.abort();
  await waiting;
  expect(timers()).toBe(before);
  await backend.waitForChange(60_000, caller.signal); // already aborted: no timer at all
  expect(timers()).toBe(before);
});
