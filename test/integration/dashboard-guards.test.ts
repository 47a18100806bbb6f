// The dashboard's guards in this process over HTTP (the server as make dashboard builds it, with a
// stand-in project): a session holds only for the token it was made with and for 12 hours from
// its sign-in; a sign-in sends the browser back only to a path of this server; and JSON bodies
// are masked string by string, so a short secret that a number spells leaves the number whole.
// Bound beyond loopback, reading needs a sign-in too; bound to every interface, a visitor naming
// this machine gets in and a rebinding name does not. Ten wrong tokens in a minute shut an
// address out of signing in for that minute; a stop's malformed shard list is a 400, not a stop
// of every shard; a missing static file's 404 does not name the project's path.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import os, { hostname, networkInterfaces } from 'node:os';
import path from 'node:path';
import { Router } from 'express';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDashboard } from '../../dashboard/app.js';
import { MAX_FAILED_SIGN_INS, NEXT_PATH, SESSION_MAX_AGE_MS } from '../../dashboard/auth.js';
import type { Project } from '../../scripts/lib/project.js';
import { REPO } from '../helpers/sandbox.js';

const OLD = 'old-token-0123456789abcdef';
const NEW = 'new-token-rotated-after-a-leak';
let tmp: string;
let server: http.Server;
let base: string;
let body: unknown = null;
/** the run the stand-in project holds (db.get), if any */
let run: unknown = null;

const writeEnv = (text: string) => writeFileSync(path.join(tmp, '.env'), text);

/** Serves the dashboard as `make dashboard host=<bindHost>` would, listening on loopback here. */
async function serve(bindHost: string): Promise<void> {
  const project = { root: tmp, config: {}, db: { keepSummariesParsed() {}, get: (id: string) => ((run as { run_id?: string } | null)?.run_id === id ? run : null) } } as unknown as Project;
  const echo = Router().get('/api/echo', (_req, res) => void res.json(body));
  let port = 0;
  const { app } = createDashboard({ project, bindHost, port: () => port, extra: () => [echo] });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
}

async function restart(bindHost: string): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await serve(bindHost);
}

beforeEach(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchyard-dashboard-guards-'));
  writeEnv(`SWITCHYARD_DASHBOARD_TOKEN=${OLD}\n`);
  mkdirSync(path.join(tmp, 'dashboard'));
  symlinkSync(path.join(REPO, 'dashboard', 'public'), path.join(tmp, 'dashboard', 'public')); // the pages
  await serve('127.0.0.1');
});

afterEach(async () => {
  vi.useRealTimers();
  run = null;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

function login(token: string, next?: string): Promise<Response> {
  const form = new URLSearchParams({ token, ...(next === undefined ? {} : { next }) });
  return fetch(`${base}/login`, { method: 'POST', redirect: 'manual', headers: { Origin: base, 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() });
}

async function signIn(token: string): Promise<{ cookie: string; csrf: string }> {
  const res = await login(token);
  expect(res.status).toBe(303);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const session = (await (await fetch(`${base}/api/session`, { headers: { Cookie: cookie } })).json()) as { csrf: string; signedIn: boolean };
  expect(session.signedIn).toBe(true);
  return { cookie, csrf: session.csrf };
}

/** A POST that needs a session: signing out. */
const act = ({ cookie, csrf }: { cookie: string; csrf: string }) =>
  fetch(`${base}/api/logout`, { method: 'POST', headers: { Origin: base, 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf }, body: '{}' });

describe('dashboard sessions', () => {
  it('end when the token in .env changes: the old cookie and its CSRF token are refused', async () => {
    const old = await signIn(OLD);
    writeEnv(`SWITCHYARD_DASHBOARD_TOKEN=${NEW}\n`); // the operator rotates the token after a leak
    const refused = await act(old);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: 'not signed in' });
    expect(await (await fetch(`${base}/api/session`, { headers: { Cookie: old.cookie } })).json()).toMatchObject({ signedIn: false, csrf: null });
    // Ended for good, even should the old token come back.
    writeEnv(`SWITCHYARD_DASHBOARD_TOKEN=${OLD}\n`);
    expect((await act(old)).status).toBe(403);
    writeEnv(`SWITCHYARD_DASHBOARD_TOKEN=${NEW}\n`);
    expect((await login(OLD)).headers.get('location')).toBe('/login?failed=1');
    expect((await act(await signIn(NEW))).status).toBe(200);
  });

  it('end 12 hours after their sign-in, however much they are used', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2026-11-30T08:00:00Z') });
    const s = await signIn(OLD);
    const cookie = (await login(OLD)).headers.get('set-cookie')!;
    expect(cookie).toContain(`Max-Age=${SESSION_MAX_AGE_MS / 1000}`);
    expect(SESSION_MAX_AGE_MS).toBe(12 * 3600_000);
    for (const hour of [3, 6, 9, 11.9]) {
      vi.setSystemTime(Date.parse('2026-11-30T08:00:00Z') + hour * 3600_000);
      expect(await (await fetch(`${base}/api/session`, { headers: { Cookie: s.cookie } })).json(), `at ${hour} h`).toMatchObject({ signedIn: true });
    }
    vi.setSystemTime(Date.parse('2026-11-30T20:00:01Z'));
    expect((await act(s)).status).toBe(403);
  });
});

describe('the sign-in', () => {
  it('sends the browser back to a path of this server only, never to //host or /\\host', async () => {
    for (const next of ['//2130706433', '//evil.example/x', '/\\evil.example', '/%2F%2Fevil', 'https://evil.example']) {
      expect((await login(OLD, next)).headers.get('location'), next).toBe('/');
    }
    expect((await login(OLD, '/runs/penguins-long-20261130T1200-0badf00d')).headers.get('location')).toBe('/runs/penguins-long-20261130T1200-0badf00d');
    // The login page fills its form with the same rule.
    expect(readFileSync(path.join(REPO, 'dashboard/public/login.js'), 'utf8')).toContain(`${NEXT_PATH}.test(next)`);
  });

  it(`refuses every token from an address after ${MAX_FAILED_SIGN_INS} wrong ones in a minute, the right one too, until the minute is over`, async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2026-11-30T08:00:00Z') });
    for (let i = 0; i < MAX_FAILED_SIGN_INS; i++) expect((await login(`guess-${i}`)).headers.get('location'), `guess ${i}`).toBe('/login?failed=1');
    const refused = await login(OLD);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('set-cookie')).toBeNull();
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(await refused.text()).toBe('too many wrong tokens: try again in a minute\n');
    vi.setSystemTime(Date.parse('2026-11-30T08:01:01Z'));
    await signIn(OLD);
  });
});

/** A GET with the Host header a browser would send for `name` (fetch does not let one set it). */
function getAs(name: string, pathname: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${pathname}`, { headers: { Host: `${name}:${new URL(base).port}` } }, (res) => (res.resume(), resolve(res.statusCode!)));
    req.once('error', reject).end();
  });
}

describe('the Host check', () => {
  it('bound to every interface, lets in a visitor naming this machine, and still refuses a rebinding name', async () => {
    const external = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((i) => !i.internal && i.family === 'IPv4')?.address;
    const names = [hostname(), ...(external ? [external] : [])];
    for (const name of names) expect(await getAs(name, '/login'), `${name}, bound to loopback`).toBe(403);
    await restart('0.0.0.0');
    for (const name of names) expect(await getAs(name, '/login'), name).toBe(200);
    expect(await getAs(hostname(), '/api/echo')).toBe(401); // reading still needs a sign-in
    expect(await getAs('rebind.evil.example', '/login')).toBe(403);
  });
});

describe('a stop', () => {
  it('refuses a shard list that is not one, rather than stopping every shard, or a retry of shard 0 for [null]', async () => {
    const id = 'penguins-knn-20261130T1200-0badf00d';
    run = { run_id: id, sharded: true, units: [0, 1].map((index) => ({ index, attempts: [] })) };
    const s = await signIn(OLD);
    const act = (verb: string, shards: unknown) =>
      fetch(`${base}/api/runs/${id}/${verb}`, { method: 'POST', headers: { Origin: base, 'Content-Type': 'application/json', Cookie: s.cookie, 'X-CSRF-Token': s.csrf }, body: JSON.stringify({ confirm: true, shards }) });
    for (const verb of ['stop', 'retry']) {
      for (const shards of [1, '1', [], ['x'], [-1], [0.5], null, [null], [true], ['0']]) {
        const res = await act(verb, shards);
        expect(res.status, `${verb} ${JSON.stringify(shards)}`).toBe(400);
        expect(await res.json(), `${verb} ${JSON.stringify(shards)}`).toEqual({ error: 'shards: a list of shard numbers, e.g. [1, 4]' });
      }
      const res = await act(verb, [1, 2]);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: `shards: run ${id} has no shard 2` });
    }
  });
});

describe('a missing static file', () => {
  it('is a 404 that does not say where the project lies', async () => {
    for (const missing of ['/static/nope.js', '/static/login.js/', '/vendor/uplot/nope.js']) {
      const res = await fetch(`${base}${missing}`);
      expect(res.status, missing).toBe(404);
      expect(await res.json(), missing).toEqual({ error: 'no such file' });
    }
  });
});

describe('reading', () => {
  it('needs nothing on loopback, and a sign-in once the server listens beyond this machine', async () => {
    body = { runs: [] };
    expect((await fetch(`${base}/api/echo`)).status).toBe(200);
    await restart('0.0.0.0');
    const refused = await fetch(`${base}/api/echo`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/^not signed in: this dashboard listens beyond this machine/) });
    const page = await fetch(`${base}/runs/penguins-long-20261130T1200-0badf00d`, { redirect: 'manual' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2Fruns%2Fpenguins-long-20261130T1200-0badf00d');
    // What signing in takes stays open.
    for (const open of ['/login', '/api/session', '/static/login.js']) expect((await fetch(`${base}${open}`)).status, open).toBe(200);
    const { cookie } = await signIn(OLD);
    expect(await (await fetch(`${base}/api/echo`, { headers: { Cookie: cookie } })).json()).toEqual({ runs: [] });
    expect((await fetch(`${base}/`, { headers: { Cookie: cookie }, redirect: 'manual' })).status).toBe(200);
  });
});

describe('JSON bodies', () => {
  it('mask the secrets in their strings and keys, and leave a number that spells a short secret whole', async () => {
    writeEnv(`SWITCHYARD_DASHBOARD_TOKEN=${OLD}\nPIN=1234\nAPI_KEY=sk-live-0a1b2c3d4e5f\n`);
    body = { step: 1234, loss: 0.1234, steps: [1234, 41234], note: 'pin 1234, key sk-live-0a1b2c3d4e5f', 'sk-live-0a1b2c3d4e5f': true, nested: [{ s: '1234' }] };
    const res = await fetch(`${base}/api/echo`);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      step: 1234,
      loss: 0.1234,
      steps: [1234, 41234],
      note: 'pin [redacted PIN], key [redacted API_KEY]',
      '[redacted API_KEY]': true,
      nested: [{ s: '[redacted PIN]' }],
    });
    expect(text).not.toContain('sk-live');
  });
});
