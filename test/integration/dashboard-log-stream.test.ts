// The dashboard's log stream (server-sent events) of a running local attempt. When the browser
// goes away the follow ends at once and closes the log, instead of holding its file (or an ssh
// channel, or a poll a second) until the log grows again. A browser that stops reading holds the
// follow where it is: the server's unsent buffer stays a few chunks however far the log has run
// ahead. What arrives is the log, masked, a secret cut between two reads too, then `end` once
// the attempt has ended.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import { waitFor } from '../helpers/sandbox.js';

const SECRET = 'hunter2-but-longer-0123';
/** Bytes the local backend reads at a time: where a read ends, a secret or a character is cut. */
const READ = 1 << 16;
/** A log far larger than every buffer between the file and the browser. */
const BIG = 64 << 20;
/** The most the server may hold unsent for a browser that has stopped reading: a few chunks' events. */
const PENDING_MAX = 1 << 20;

let tmp: string;
let server: http.Server | undefined;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-log-stream-'));
  writeFileSync(path.join(tmp, '.env'), `LOG_TOKEN=${SECRET}\n`);
});
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(null));
  server = undefined;
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * The runs routes over one local attempt, listening on a free port; `responses` are the
 * server's side of each request, as they come.
 */
async function serve(workDir: string, handle: object): Promise<{ run: RunRecord; port: number; responses: http.ServerResponse[] }> {
  const run = { run_id: 'quiet-20261130T1200-0badf00d', sharded: false, units: [{ index: 0, attempts: [{ n: 1, backend: 'local', handle }], moved_from: [] }] } as unknown as RunRecord;
  const project = { root: tmp, config: { hosts: {}, fleets: {} }, store: new FileStore('file://store', path.join(tmp, 'store')), workDir: () => workDir, db: { get: (id: string) => (id === run.run_id ? run : null) } } as unknown as Project;
  const app = express().use(runsRoutes({ project, runs: {} as RunsCache, secrets: new EnvSecrets(tmp) }));
  const responses: http.ServerResponse[] = [];
  server = app.listen(0, '127.0.0.1');
  server.on('request', (_req, res: http.ServerResponse) => responses.push(res));
  await new Promise((r) => server!.once('listening', r));
  return { run, port: (server.address() as AddressInfo).port, responses };
}

async function openStream(port: number, run: RunRecord): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  const req = http.get({ host: '127.0.0.1', port, path: `/api/runs/${run.run_id}/log/stream?stream=stderr` });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
  expect(res.statusCode).toBe(200);
  return { req, res };
}

const until = (what: string, check: () => boolean, ms = 20_000) => waitFor(check, ms, what);

/** The events of a whole stream, comments left out. */
function parseEvents(body: string): { event: string; data: string }[] {
  return body
    .split('\n\n')
    .filter((block) => block.startsWith('event: '))
    .map((block) => {
      const [event, data] = block.split('\n');
      return { event: event!.slice('event: '.length), data: JSON.parse(data!.slice('data: '.length)) as string };
    });
}

describe('the dashboard log stream', () => {
  it('a reader gone while the log is quiet ends the follow and closes the log', async () => {
    const { workDir, log, handle } = quietLocalAttempt(tmp);
    const { run, port } = await serve(workDir, handle);
    const { req, res } = await openStream(port, run);
    await new Promise((resolve) => res.once('data', resolve)); // the stream's first comment: the follow has begun
    await expect.poll(() => openFds(log)).toBe(1);
    req.destroy(); // the browser went away
    await expect.poll(() => openFds(log), { timeout: 3000 }).toBe(0);
  });

  it('a reader that stops holds the follow: the server keeps a few chunks unsent, however far the log runs ahead', async () => {
    const { workDir, log, handle } = quietLocalAttempt(tmp);
    writeFileSync(log, Buffer.alloc(BIG, 'a training log line\n'));
    const { run, port, responses } = await serve(workDir, handle);
    const { req, res } = await openStream(port, run);
    await new Promise((resolve) => res.once('data', resolve));
    res.pause(); // the browser stops reading
    const sending = responses[0]!;
    // Until the server is held back (its buffer full and no longer growing) or has run away.
    let last = -1;
    await until('the server held back, or past the bound', () => {
      const pending = sending.writableLength;
      const still = pending === last;
      last = pending;
      return pending > PENDING_MAX || (sending.writableNeedDrain && still);
    });
    expect(sending.writableLength).toBeLessThanOrEqual(PENDING_MAX);
    expect(openFds(log)).toBe(1); // the follow is open, waiting for the reader
    req.destroy();
    await expect.poll(() => openFds(log), { timeout: 3000 }).toBe(0);
  });

  it('sends the log masked, a secret and a character cut between two reads, then `end` once the attempt has ended', async () => {
    const { workDir, log, handle } = quietLocalAttempt(tmp);
    // The secret straddles the first read's end, a two-byte character the second's.
    const head = 'x'.repeat(READ - 5) + SECRET + '\n';
    const content = head + 'y'.repeat(2 * READ - 1 - Buffer.byteLength(head)) + 'é' + `\nthe end ${SECRET}\n`;
    writeFileSync(log, content);
    writeFileSync(path.join(path.dirname(log), 'status.json'), JSON.stringify({ run_id: 'r', attempt: 1, state: 'succeeded', exit_code: 0 }));
    const { run, port } = await serve(workDir, { ...handle, pid: 0 }); // its runner gone, its status final
    const { res } = await openStream(port, run);
    let body = '';
    for await (const chunk of res as AsyncIterable<Buffer>) body += chunk.toString('utf8');
    const events = parseEvents(body);
    expect(events.at(-1)).toEqual({ event: 'end', data: '' });
    expect(events.slice(0, -1).every((e) => e.event === 'chunk')).toBe(true);
    expect(events.map((e) => e.data).join('') === content.replaceAll(SECRET, '[redacted LOG_TOKEN]')).toBe(true);
  });

  it('a follow that fails ends the stream with `failed` and why, masked', async () => {
    const { workDir } = quietLocalAttempt(tmp);
    const { run, port } = await serve(workDir, { backend: 'ssh', host: SECRET, run_id: 'r', attempt: 1, root: 'switchyard', session: 'sy-r-1' });
    const { res } = await openStream(port, run);
    let body = '';
    for await (const chunk of res as AsyncIterable<Buffer>) body += chunk.toString('utf8');
    const events = parseEvents(body);
    expect(events.map((e) => e.event)).toEqual(['failed']);
    expect(events[0]!.data).toContain('[redacted LOG_TOKEN]');
    expect(body).not.toContain(SECRET);
  });
});
