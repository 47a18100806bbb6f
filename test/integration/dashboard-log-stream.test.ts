// The dashboard's log stream (server-sent events) of a running local attempt whose log is quiet:
// when the browser goes away the follow ends at once and closes the log, instead of holding its
// file (or an ssh channel, or a poll a second) until the log grows again.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runsRoutes } from '../../dashboard/routes/runs.js';
import type { RunsCache } from '../../dashboard/runs-view.js';
import { EnvSecrets } from '../../dashboard/secrets.js';
import type { Project } from '../../scripts/lib/project.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { openFds } from '../helpers/open-fds.js';
import { quietLocalAttempt } from '../helpers/quiet-attempt.js';

let tmp: string;
let server: http.Server | undefined;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-log-stream-'));
});
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(null));
  rmSync(tmp, { recursive: true, force: true });
});

describe('the dashboard log stream', () => {
  it('a reader gone while the log is quiet ends the follow and closes the log', async () => {
    const { workDir, log, handle } = quietLocalAttempt(tmp);
    const run = { run_id: 'quiet-20261130T1200-0badf00d', sharded: false, units: [{ index: 0, attempts: [{ n: 1, backend: 'local', handle }], moved_from: [] }] } as unknown as RunRecord;
    const project = { root: tmp, config: {}, store: new FileStore('file://store', path.join(tmp, 'store')), workDir: () => workDir, db: { get: (id: string) => (id === run.run_id ? run : null) } } as unknown as Project;
    const app = express().use(runsRoutes({ project, runs: {} as RunsCache, secrets: new EnvSecrets(tmp) }));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server!.once('listening', r));
    const { port } = server.address() as AddressInfo;

    const req = http.get({ host: '127.0.0.1', port, path: `/api/runs/${run.run_id}/log/stream?stream=stderr` });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
    expect(res.statusCode).toBe(200);
    await new Promise((resolve) => res.once('data', resolve)); // the stream's first comment: the follow has begun
    await expect.poll(() => openFds(log)).toBe(1);
    req.destroy(); // the browser went away
    await expect.poll(() => openFds(log), { timeout: 3000 }).toBe(0);
  });
});
