// A followed local log that its reader leaves while nothing is written: the dashboard's stream of
// a quiet stderr. A generator's return() waits for its next yield, which a quiet log never
// reaches; the follow's signal ends it at once, and the log's file descriptor with it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../scripts/lib/backends/local.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { openFds } from '../helpers/open-fds.js';
import { quietLocalAttempt } from '../helpers/quiet-attempt.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-local-logs-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

describe('LocalBackend.logs followed', () => {
  it('ends at once when its signal aborts while the next chunk of a quiet log is awaited, closing the log', async () => {
    const { workDir, log, handle } = quietLocalAttempt(tmp);
    const backend = new LocalBackend({ root: tmp, store: new FileStore('file://store', path.join(tmp, 'store')), workDir: () => workDir });
    const follow = new AbortController();
    const it = backend.logs(handle, { follow: true, stream: 'stderr', signal: follow.signal })[Symbol.asyncIterator]();
    const next = it.next();
    await expect.poll(() => openFds(log)).toBe(1);
    follow.abort();
    const late = new Promise((resolve) => setTimeout(() => resolve('still pending'), 2000).unref());
    await expect(Promise.race([next, late])).resolves.toEqual({ done: true, value: undefined });
    expect(openFds(log)).toBe(0);
    await expect(it.return!(undefined)).resolves.toEqual({ done: true, value: undefined });
  });
});
