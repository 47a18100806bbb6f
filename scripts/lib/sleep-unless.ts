// A sleep that an AbortSignal cuts short quietly, for loops that are woken often.

/**
 * Resolves after `ms`, or at once when `signal` aborts. Unlike timers/promises' sleep it builds
 * no AbortError (a stack trace) when cut short, which the supervisor does at every message.
 */
export function sleepUnless(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The reason an AbortController is given where nobody reads it: abort() with none builds a DOMException, stack and all. */
export const CUT_SHORT = 'cut short';
