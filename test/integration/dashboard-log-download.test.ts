// The dashboard's log download streams: from the attempt's file on this machine, or `cat` on an
// ssh host's channel, to the HTTP response as the client takes it. The first bytes go out while
// the log is still being read, a client that stops reading holds the read where it is (the file
// stays open, `cat` waits on its channel), and a client that leaves closes the file or ends
// `cat`. What arrives is the log, masked, a secret cut between two reads too.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runsRoutes } from '../../dashboard/routes/runs.js';
import type { RunsCache } from '../../dashboard/runs-view.js';
import { EnvSecrets } from '../../dashboard/secrets.js';
import type { Project } from '../../scripts/lib/project.js';
import { closeSharedPool } from '../../scripts/lib/remote/open-host.js';
import { workPaths } from '../../scripts/lib/runner/attempt-runner.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { openFds } from '../helpers/open-fds.js';
import { startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

const SECRET = 'hunter2-but-longer-0123';
/** Bytes the local backend reads at a time: where a read ends, a secret or a character is cut. */
const READ = 1 << 16;
/** A log far larger than every buffer between the file and the client. */
const BIG = 48 << 20;

let tmp: string;
let server: http.Server | undefined;

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-log-download-'));
  writeFileSync(path.join(tmp, '.env'), `LOG_TOKEN=${SECRET}\n`);
});
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(null));
  server = undefined;
  rmSync(tmp, { recursive: true, force: true });
});

const runId = () => `big-default-20261130T1200-${randomBytes(4).toString('hex')}`;

function runWith(id: string, handle: Record<string, unknown>): RunRecord {
  return { run_id: id, sharded: false, units: [{ index: 0, attempts: [{ n: 1, backend: handle.backend, handle }], moved_from: [] }] } as unknown as RunRecord;
}

/** The runs routes over one run, behind the dashboard's masking, listening on a free port. */
async function serve(run: RunRecord, project: Partial<Project>): Promise<number> {
  const full = { root: tmp, config: { hosts: {} }, store: new FileStore('file://store', path.join(tmp, 'store')), db: { get: (id: string) => (id === run.run_id ? run : null) }, ...project } as unknown as Project;
  const secrets = new EnvSecrets(tmp);
  server = express().use(secrets.middleware()).use(runsRoutes({ project: full, runs: {} as RunsCache, secrets })).listen(0, '127.0.0.1');
  await new Promise((r) => server!.once('listening', r));
  return (server.address() as AddressInfo).port;
}

/** The download's response, once its headers are in. */
async function download(port: number, run: RunRecord): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  const req = http.get({ host: '127.0.0.1', port, path: `/api/runs/${run.run_id}/log` });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
  expect(res.statusCode).toBe(200);
  return { req, res };
}

/** The body's first chunk; the response is paused after it, as a client that stops reading. */
async function firstChunkThenPause(res: http.IncomingMessage): Promise<Buffer> {
  const chunk = await new Promise<Buffer>((resolve) => res.once('data', resolve));
  res.pause();
  return chunk;
}

async function sha256Of(res: http.IncomingMessage): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('the log download, from this machine', () => {
  /** A local attempt (this process stands in for its runner) whose stdout.log holds `content`. */
  function localAttempt(content: Buffer | string): { run: RunRecord; log: string; workDir: string } {
    const workDir = path.join(tmp, 'work');
    const dir = workPaths(workDir, 1).attempt;
    mkdirSync(dir, { recursive: true });
    const log = path.join(dir, 'stdout.log');
    writeFileSync(log, content);
    const handle = { backend: 'local', pid: process.pid, pid_start: null, run_id: 'r', unit: 'r', work_dir: workDir, attempt: 1, detached: true };
    return { run: runWith(runId(), handle), log, workDir };
  }

  it('sends the first bytes while the log is still read, holds the read for a client that stops, and closes the log when it leaves', async () => {
    const { run, log, workDir } = localAttempt(Buffer.alloc(BIG, 'a training log line\n'));
    const port = await serve(run, { workDir: () => workDir });
    const { req, res } = await download(port, run);
    expect(res.headers['content-disposition']).toBe(`attachment; filename=${run.run_id}-stdout.log`);
    expect((await firstChunkThenPause(res)).length).toBeLessThan(BIG);
    expect(openFds(log)).toBe(1); // still reading, with 48 MB to go
    req.destroy(); // the browser went away
    await expect.poll(() => openFds(log), { timeout: 5000 }).toBe(0);
  });

  it('sends the whole log, masked, with a secret and a character cut between two reads', async () => {
    // The secret straddles the first read's end, a two-byte character the second's.
    const head = 'x'.repeat(READ - 5) + SECRET + '\n';
    const content = head + 'y'.repeat(2 * READ - 1 - Buffer.byteLength(head)) + 'é' + `\nthe end ${SECRET}\n`;
    const { run, workDir } = localAttempt(content);
    const port = await serve(run, { workDir: () => workDir });
    const { res } = await download(port, run);
    let body = '';
    for await (const chunk of res as AsyncIterable<Buffer>) body += chunk.toString('latin1');
    const expected = content.replaceAll(SECRET, '[redacted LOG_TOKEN]');
    expect(Buffer.from(body, 'latin1').toString('utf8') === expected).toBe(true);
  });
});

describe('the log download, from an ssh host', () => {
  let hosts: TestHosts;
  beforeAll(async () => {
    hosts = await startTestHosts(1, { prefix: 'sylogdl' });
  }, 120_000);
  afterAll(async () => {
    await closeSharedPool();
    await hosts?.cleanup();
  });

  /** An ssh attempt on h1 whose stdout.log is BIG bytes of `line`, made on the host; the log's path there. */
  async function sshAttempt(line: string): Promise<{ run: RunRecord; config: Project['config']; file: string }> {
    const h = hosts.hosts[0]!;
    const id = runId();
    const file = `switchyard/scratch/${id}/attempts/1/stdout.log`;
    await hosts.execOn('h1', ['sh', '-c', 'cd && mkdir -p "$(dirname "$1")" && yes "$2" | head -c "$3" > "$1"', 'sh', file, line, String(BIG)]);
    const entry = { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts, connect_timeout: 5, gpus: 0, root: 'switchyard' };
    const handle = { backend: 'ssh', host: 'h1', run_id: id, attempt: 1, root: 'switchyard', session: `sy-${id}-1` };
    return { run: runWith(id, handle), config: { hosts: { h1: entry } } as unknown as Project['config'], file };
  }

  /** How many `cat` of the file run (the hosts share this machine's process table). */
  function cats(file: string): number {
    try {
      return Number(execFileSync('pgrep', ['-c', '-x', '-f', `cat ${file}`]).toString());
    } catch {
      return 0; // pgrep exits 1 when none match
    }
  }

  it('streams `cat` from its channel as the client takes it, and a client that leaves ends `cat` on the host', async () => {
    const { run, config, file } = await sshAttempt('a training log line');
    const port = await serve(run, { config });
    const { req, res } = await download(port, run);
    expect((await firstChunkThenPause(res)).length).toBeLessThan(BIG);
    expect(cats(file)).toBe(1); // still sending, held back by the paused client
    req.destroy();
    await expect.poll(() => cats(file), { timeout: 5000 }).toBe(0);
  }, 60_000);

  it('sends the whole log byte for byte, masked', async () => {
    const { run, config } = await sshAttempt(`step ${SECRET}`);
    const port = await serve(run, { config });
    const { res } = await download(port, run);
    const expected = Buffer.alloc(BIG, `step ${SECRET}\n`).toString('latin1').replaceAll(SECRET, '[redacted LOG_TOKEN]');
    expect(await sha256Of(res)).toEqual({ bytes: Buffer.byteLength(expected, 'latin1'), sha256: sha256(Buffer.from(expected, 'latin1')) });
  }, 60_000);
});
