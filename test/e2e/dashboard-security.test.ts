// The dashboard's guards over HTTP against a running `make dashboard`: every POST without a
// session or without its CSRF token is 403 and changes nothing; a cross-origin form post is 403;
// a secret in .env printed by a training script reaches no response body; `../` in any path
// parameter is 400; host=0.0.0.0 without a token refuses to start.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type RunningDashboard } from '../helpers/dashboard.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';

const TOKEN = 'security-test-token-9f8e7d6c5b4a';
const SECRET = 'sk-planted-4c1d2e9f0a7b3c5d';
let sb: Sandbox;
let dash: RunningDashboard;
let runId: string;

const ledger = () => (existsSync(path.join(sb.dir, '.switchyard/ledger.jsonl')) ? readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8') : '');

beforeAll(async () => {
  sb = createSandbox();
  writeFileSync(path.join(sb.dir, '.env'), `SWITCHYARD_DASHBOARD_TOKEN=${TOKEN}\nSOME_API_KEY=${SECRET}\n`);
  // A script that knows the secret without declaring it: the runner cannot mask it, the dashboard must.
  const comp = path.join(sb.dir, 'competitions/penguins');
  writeFileSync(
    path.join(comp, 'leak_plain.py'),
    `import json, os, sys\nprint("the key is ${SECRET}", flush=True)\nprint("stderr ${SECRET}", file=sys.stderr)\nopen(os.environ["SWITCHYARD_METRICS"], "a").write(json.dumps({"step": 1, "loss": 0.5, "note": "${SECRET}"}) + "\\n")\n`,
  );
  const fast = readFileSync(path.join(comp, 'experiments/fast.yaml'), 'utf8');
  writeFileSync(path.join(comp, 'experiments/leakplain.yaml'), fast.replace('command: python3 train.py', 'command: python3 leak_plain.py'));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'leak']);
  const train = sb.make(['train', 'experiment=penguins/leakplain']);
  runId = /run (penguins-leakplain-\S+)/.exec(train.stdout + train.stderr)?.[1] ?? '';
  expect(runId, train.stdout + train.stderr).not.toBe('');
  // The test can fail: the stored log holds the secret in the clear.
  expect(readFileSync(path.join(sb.dir, `.switchyard/store/runs/${runId}/attempts/1/stdout.log`), 'utf8')).toContain(SECRET);
  dash = await startDashboard(sb);
}, 300_000);

afterAll(async () => {
  await dash?.stop();
  sb?.cleanup();
});

const origin = () => dash.url;

/** A GET sent byte for byte (fetch would normalise `..` and set Host itself). */
function rawStatus(pathname: string, headers: Record<string, string> = {}): Promise<number> {
  const { hostname, port } = new URL(dash.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: pathname, headers, method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}

async function signIn(): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${dash.url}/login`, { method: 'POST', redirect: 'manual', headers: { Origin: origin(), 'Content-Type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
  expect(res.status).toBe(303);
  const setCookie = res.headers.get('set-cookie')!;
  expect(setCookie).toMatch(/HttpOnly/);
  expect(setCookie).toMatch(/SameSite=Strict/);
  const cookie = setCookie.split(';')[0]!;
  const session = (await (await fetch(`${dash.url}/api/session`, { headers: { Cookie: cookie } })).json()) as { csrf: string; signedIn: boolean };
  expect(session.signedIn).toBe(true);
  return { cookie, csrf: session.csrf };
}

const POSTS = () => [`/api/runs/${runId}/stop`, `/api/runs/${runId}/pull`, `/api/runs/${runId}/retry`, `/api/runs/${runId}/submit`, '/api/hosts/h1/sync', '/api/logout'];

describe('dashboard security', () => {
  it('every POST without a session, or without its CSRF token, is 403 and has no effect', async () => {
    const { cookie, csrf } = await signIn();
    const before = ledger();
    for (const route of POSTS()) {
      const body = JSON.stringify({ confirm: true, dry: true, shards: [0] });
      const bare = await fetch(`${dash.url}${route}`, { method: 'POST', headers: { Origin: origin(), 'Content-Type': 'application/json' }, body });
      expect(bare.status, `${route} without a session`).toBe(403);
      const noCsrf = await fetch(`${dash.url}${route}`, { method: 'POST', headers: { Origin: origin(), 'Content-Type': 'application/json', Cookie: cookie }, body });
      expect(noCsrf.status, `${route} without a CSRF token`).toBe(403);
      const wrong = await fetch(`${dash.url}${route}`, { method: 'POST', headers: { Origin: origin(), 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': `${csrf}x` }, body });
      expect(wrong.status, `${route} with a wrong CSRF token`).toBe(403);
    }
    expect(ledger()).toBe(before);
    expect(existsSync(path.join(sb.dir, 'outputs', runId))).toBe(false);
    expect(existsSync(path.join(sb.dir, `.switchyard/store/runs/${runId}/submissions`))).toBe(false);
    // The same session and token do act: the refusals above were the guards, not a broken route.
    const ok = await fetch(`${dash.url}/api/runs/${runId}/pull`, { method: 'POST', headers: { Origin: origin(), 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf }, body: '{}' });
    expect(ok.status).toBe(200);
    expect(existsSync(path.join(sb.dir, 'outputs', runId, 'run.json'))).toBe(true);
    expect(ledger()).toMatch(new RegExp(`"type":"dashboard.action","who":"session-[^"]+","action":"pull","run_id":"${runId}"`));
  });

  it('a cross-origin form post is 403, even carrying a live session and its CSRF token', async () => {
    const { cookie, csrf } = await signIn();
    const before = ledger();
    for (const route of [...POSTS(), '/login']) {
      const res = await fetch(`${dash.url}${route}`, {
        method: 'POST',
        headers: { Origin: 'http://evil.example', 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie, 'X-CSRF-Token': csrf },
        body: `confirm=true&token=${TOKEN}`,
      });
      expect(res.status, route).toBe(403);
    }
    const noOrigin = await fetch(`${dash.url}/api/runs/${runId}/pull`, { method: 'POST', headers: { Cookie: cookie, 'X-CSRF-Token': csrf } });
    expect(noOrigin.status).toBe(403);
    expect(ledger()).toBe(before);
    // A rebinding name in Host is refused outright.
    expect(await rawStatus('/api/runs', { Host: 'evil.example' })).toBe(403);
  });

  it('a secret from .env printed by the training script appears in no response body', async () => {
    const gets = [
      '/',
      `/runs/${runId}`,
      '/api/runs',
      `/api/runs?q=${runId}`,
      `/api/runs/${runId}`,
      `/api/runs/${runId}/log`,
      `/api/runs/${runId}/log?stream=stderr`,
      `/api/runs/${runId}/metrics`,
      `/api/runs/${runId}/log?shard=${SECRET}`, // an error that echoes the value
      `/api/runs/${runId}/metrics?have=${SECRET}`,
      '/api/submissions',
      '/api/hosts',
    ];
    const bodies: string[] = [];
    for (const route of gets) {
      const res = await fetch(`${dash.url}${route}`);
      bodies.push(`${res.status}\n${await res.text()}`);
    }
    const stream = await fetch(`${dash.url}/api/runs/${runId}/log/stream`);
    bodies.push(await stream.text()); // the attempt has ended: the stream ends after the whole log
    const all = bodies.join('\n');
    expect(all).toContain('the key is [redacted SOME_API_KEY]');
    expect(all).toContain('"note":"[redacted SOME_API_KEY]"');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(TOKEN);
  });

  it('../ in any path parameter is 400', async () => {
    // As sent, not as a client would normalise it.
    for (const raw of ['/api/runs/../../etc/passwd', '/api/runs/x/../../../etc/log', '/static/../../.env', '/vendor/uplot/../../../.env', '/api/runs/%2E%2E/x']) expect(await rawStatus(raw), raw).toBe(400);
    for (const bad of ['..%2F..%2Fetc%2Fpasswd', '..%2F', '%2E%2E%2Fx', 'a%2F..%2F..%2Fb']) {
      for (const route of [`/api/runs/${bad}`, `/api/runs/${bad}/log`, `/api/runs/${bad}/log/stream`, `/api/runs/${bad}/metrics`]) {
        const res = await fetch(`${dash.url}${route}`);
        expect(res.status, route).toBe(400);
      }
    }
    const { cookie, csrf } = await signIn();
    for (const route of [`/api/runs/..%2Fx/stop`, `/api/runs/..%2Fx/pull`, '/api/hosts/..%2F..%2Fh1/sync']) {
      const res = await fetch(`${dash.url}${route}`, { method: 'POST', headers: { Origin: origin(), 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf }, body: '{"confirm":true}' });
      expect(res.status, route).toBe(400);
    }
    expect((await fetch(`${dash.url}/api/submissions?competition=..%2F..`)).status).toBe(400);
  });

  it('host=0.0.0.0 without a token in .env refuses to start', async () => {
    writeFileSync(path.join(sb.dir, '.env'), `SOME_API_KEY=${SECRET}\n`);
    const r = sb.make(['dashboard', 'host=0.0.0.0', 'port=0'], { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('switchyard: dashboard: host=0.0.0.0 opens it beyond this machine; set SWITCHYARD_DASHBOARD_TOKEN in .env first');
    expect(r.stdout).not.toContain('dashboard on');
  });
});
