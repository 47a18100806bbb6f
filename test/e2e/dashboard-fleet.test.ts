// The dashboard over a fleet of three real sshd hosts (test/helpers/ssh-hosts.ts), in headless
// Chromium and through its API with a session and CSRF token: a fleet search's page and the runs
// table show every shard's host; a shard retried from the API runs again elsewhere, is stopped
// from the API, retried from the page, runs to the end, and make status agrees; sync pushes the project
// to a host; pull brings the search home; a run on an ssh host charts metrics from the host's
// file before any checkpoint; a host whose sshd is stopped shows down within its
// connect timeout while the others stay live. Screenshots of the fleet run's page and the hosts
// page land in test-artifacts/. One set of hosts, one sandbox, one dashboard, one browser for the file.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium, startDashboard, type RunningDashboard } from '../helpers/dashboard.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { inventoryEntries, startTestHosts, type TestHosts } from '../helpers/ssh-hosts.js';

const TOKEN = 'fleet-dashboard-token-5e6f7a8b9c0d';
const PROBE_MS = 1000;
const CONNECT_TIMEOUT_SEC = 3; // inventoryEntries' connect_timeout
let hosts: TestHosts;
let sb: Sandbox;
let dash: RunningDashboard;
let chromium: Awaited<ReturnType<typeof launchChromium>>;
let browser: Browser;
let session: { cookie: string; csrf: string };
let runId: string;

const store = (rel: string) => path.join(sb.dir, '.switchyard/store', rel);
const runJson = () => JSON.parse(readFileSync(store(`runs/${runId}/run.json`), 'utf8')) as { shards: { attempts: { n: number; state: string; handle: { host: string } }[] }[] };

async function signIn(): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${dash.url}/login`, { method: 'POST', redirect: 'manual', headers: { Origin: dash.url, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
  expect(res.status).toBe(303);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const { csrf } = (await (await fetch(`${dash.url}/api/session`, { headers: { Cookie: cookie } })).json()) as { csrf: string };
  return { cookie, csrf };
}

/** A POST as the page sends it: Origin, session cookie, CSRF token. */
async function act(route: string, body: Record<string, unknown> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${dash.url}${route}`, {
    method: 'POST',
    headers: { Origin: dash.url, 'Content-Type': 'application/json', Cookie: session.cookie, 'X-CSRF-Token': session.csrf },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const getJSON = async <T>(route: string): Promise<T> => (await (await fetch(`${dash.url}${route}`)).json()) as T;
type Unit = { unit: number; state: string; attempts: { n: number; host: string | null }[] };
const units = async () => (await getJSON<{ units: Unit[] }>(`/api/runs/${runId}`)).units;

beforeAll(async () => {
  hosts = await startTestHosts(3, { prefix: 'sydash' });
  sb = createSandbox();
  writeFileSync(path.join(sb.dir, '.env'), `SWITCHYARD_DASHBOARD_TOKEN=${TOKEN}\n`);
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  writeFileSync(
    config,
    readFileSync(config, 'utf8')
      .replace('  hosts: {},', `  hosts: {\n${inventoryEntries(hosts).join('\n')}\n  },`)
      .replace('  fleets: {},', `  fleets: {\n    lab: { hosts: ['h1', 'h2', 'h3'], lost_after_sec: 60 },\n  },`),
  );
  // Checkpoints (and the store's copy of the metrics) a minute apart: a chart that grows sooner reads the host's file.
  const penguins = readFileSync(path.join(sb.dir, 'competitions/penguins/experiment.yaml'), 'utf8');
  writeFileSync(path.join(sb.dir, 'competitions/penguins/experiments/rare.yaml'), penguins.replace('EPOCHS: "8000"', 'EPOCHS: "2000000"').replace('checkpoint_every_sec: 2', 'checkpoint_every_sec: 60'));
  // A pause after each of a shard's 5 keys: a retried shard runs long enough to be watched and stopped.
  const base = readFileSync(path.join(sb.dir, 'competitions/knn/experiment.yaml'), 'utf8');
  writeFileSync(path.join(sb.dir, 'competitions/knn/experiments/paced.yaml'), base.replace('count: 1', 'count: 6').replace('  checkpoint_every_sec: 1', '  checkpoint_every_sec: 0.5\n  env: { KNN_UNIT_PAUSE_SEC: "1.5" }'));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'fleet for the dashboard']);
  const boot = sb.make(['bootstrap', 'fleet=lab'], { timeoutMs: 300_000 });
  expect(boot.code, boot.stdout + boot.stderr).toBe(0);
  dash = await startDashboard(sb, [], { SWITCHYARD_PROBE_INTERVAL_MS: String(PROBE_MS) });
  session = await signIn();
  chromium = await launchChromium();
  browser = chromium.browser;
  mkdirSync(ARTIFACTS, { recursive: true });
}, 600_000);

afterAll(async () => {
  await chromium?.close();
  await dash?.stop();
  await hosts?.cleanup();
  sb?.cleanup();
});

describe('dashboard over a fleet', () => {
  it("a fleet search's page shows every shard's host", async () => {
    const r = sb.make(['fleet-search', 'experiment=knn/paced', 'fleet=lab'], { timeoutMs: 300_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    runId = /run (knn-paced-\S+)/.exec(r.stdout + r.stderr)![1]!;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${dash.url}/runs/${runId}`);
    const cells = page.locator('table.units tbody tr.current');
    await expect.poll(() => cells.count(), { timeout: 30_000 }).toBe(6);
    const shown = await cells.evaluateAll((rows) => rows.map((tr) => [tr.children[0]!.textContent, tr.querySelector('td.host')!.textContent]));
    expect(shown).toEqual(runJson().shards.map((s, i) => [`shard ${i}`, s.attempts.at(-1)!.handle.host]));
    expect(new Set(shown.map(([, host]) => host))).toEqual(new Set(['h1', 'h2', 'h3']));
    // A finished shard's log ends (knn writes to stderr: its stdout is empty, and says so).
    await page.waitForSelector('#log-state >> text=ended', { timeout: 60_000 });
    expect(await page.locator('#log[data-empty]').count()).toBe(1);
    await expect(page.locator('#chart-note').innerText()).resolves.toContain('no metrics: the experiment wrote none');
    await page.screenshot({ path: path.join(ARTIFACTS, 'fleet-run.png'), fullPage: true });
    // The runs table lists it with its hosts (from the run's summary in the index).
    await page.goto(`${dash.url}/?q=knn-paced`);
    const row = page.locator(`#runs tbody tr[data-run="${runId}"]`);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('td').evaluateAll((tds) => tds.map((td) => td.textContent))).toEqual(expect.arrayContaining(['knn/paced', 'fleet', 'h1, h2, h3', 'succeeded', '6/6 shards']));
    await page.close();
  }, 400_000);

  it('retry of a shard from the API runs it elsewhere; stopped from the API, retried again from the page, it finishes and make status agrees', async () => {
    const before = runJson().shards[4]!.attempts.at(-1)!.handle.host;
    const first = await act(`/api/runs/${runId}/retry`, { shards: [4], confirm: true });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body).toMatchObject({ ok: true, shards: [4] });
    expect(first.body.host).not.toBe(before);
    await expect.poll(async () => (await units())[4]!.state, { timeout: 120_000, interval: 500 }).toBe('running');
    expect((await units())[4]!.attempts.at(-1)).toMatchObject({ n: 2, host: first.body.host });

    const stop = await act(`/api/runs/${runId}/stop`, { shards: [4], confirm: true });
    expect(stop.status, JSON.stringify(stop.body)).toBe(200);
    await expect.poll(async () => (await units())[4]!.state, { timeout: 120_000, interval: 500 }).toBe('cancelled');
    const stopped = sb.make(['status', `run=${runId}`]);
    expect(stopped.stdout).toMatch(/cancelled/);

    // Again from the run page's button, confirmed in its dialog.
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${dash.url}/login`);
    await page.fill('input[name=token]', TOKEN);
    await Promise.all([page.waitForURL(`${dash.url}/`), page.click('button[type=submit]')]);
    await page.goto(`${dash.url}/runs/${runId}`);
    await page.click('#actions button:has-text("Retry shards 4")', { timeout: 60_000 });
    await page.click('dialog.confirm button.danger');
    await page.waitForSelector('.toast >> text=/Retry shards 4: shards 4 on h\\d/', { timeout: 120_000 });
    await page.close();
    await expect.poll(async () => (await units())[4]!.state, { timeout: 180_000, interval: 500 }).toBe('succeeded');
    // The dashboard, which follows the retried shard, records its end (the page asked the host first).
    await expect.poll(() => runJson().shards[4]!.attempts.map((a) => [a.n, a.state]), { timeout: 120_000, interval: 500 }).toEqual([[1, 'succeeded'], [2, 'cancelled'], [3, 'succeeded']]);
    const status = sb.make(['status']);
    expect(status.stdout).toMatch(new RegExp(`${runId}\\s+knn/paced\\s+succeeded \\(6/6 shards\\)`));
    const ledger = readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8');
    for (const action of ['retry', 'stop']) expect(ledger).toMatch(new RegExp(`"type":"dashboard.action","who":"session-[^"]+","action":"${action}","run_id":"${runId}"[^\\n]*"result":"ok"`));
  }, 400_000);

  it('sync pushes the project to a host; pull brings the search home', async () => {
    const marker = `synced-${Date.now()}.txt`;
    writeFileSync(path.join(sb.dir, 'competitions/knn', marker), 'from the dashboard\n');
    const sync = await act('/api/hosts/h2/sync');
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    expect(sync.body).toMatchObject({ ok: true, host: 'h2' });
    expect(sync.body.filesTransferred).toBeGreaterThanOrEqual(1);
    const h2 = hosts.hosts.find((h) => h.name === 'h2')!;
    expect(readFileSync(path.join(h2.home, String(sync.body.repo), 'competitions/knn', marker), 'utf8')).toBe('from the dashboard\n');

    const pull = await act(`/api/runs/${runId}/pull`);
    expect(pull.status, JSON.stringify(pull.body)).toBe(200);
    expect(pull.body.dest).toBe(`outputs/${runId}`);
    expect(existsSync(path.join(sb.dir, 'outputs', runId, 'outputs/merged.jsonl'))).toBe(true);
    expect(readFileSync(path.join(sb.dir, 'outputs', runId, 'shards/4/attempts/3/stderr.log'), 'utf8')).toContain('search: shard 4 of 6');
  }, 200_000);

  it("a run on an ssh host charts its metrics live from the host's file, ahead of the store's copy", async () => {
    const train = sb.spawnMake(['train', 'experiment=penguins/rare', 'backend=ssh', 'host=h1']);
    try {
      await expect.poll(() => /run (penguins-rare-\S+)/.exec(train.output())?.[1], { timeout: 180_000, interval: 500 }).toBeTruthy();
      const id = /run (penguins-rare-\S+)/.exec(train.output())![1]!;
      type Columns = { steps: number[]; live: boolean };
      const steps = async () => {
        const m = await getJSON<Columns>(`/api/runs/${id}/metrics`);
        return m.live ? m.steps.length : 0;
      };
      await expect.poll(steps, { timeout: 180_000, interval: 500 }).toBeGreaterThan(0);
      const first = await steps();
      await expect.poll(steps, { timeout: 60_000, interval: 500 }).toBeGreaterThan(first);
      // The store's copy waits for the checkpoint a minute away.
      const stored = store(`runs/${id}/attempts/1/metrics.jsonl`);
      const storedLines = existsSync(stored) ? readFileSync(stored, 'utf8').split('\n').filter(Boolean).length : 0;
      expect(storedLines).toBeLessThan(await steps());
      const stop = await act(`/api/runs/${id}/stop`, { confirm: true });
      expect(stop.status, JSON.stringify(stop.body)).toBe(200);
      await expect.poll(() => train.exitCode, { timeout: 120_000, interval: 500 }).not.toBeNull();
      expect(sb.make(['status', `run=${id}`]).stdout).toMatch(/cancelled/);
    } finally {
      if (train.exitCode === null) process.kill(-train.pid!, 'SIGKILL');
    }
  }, 400_000);

  it('a host whose sshd is stopped shows down within its connect timeout while the others stay live', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${dash.url}/hosts`);
    const state = (name: string) => page.locator(`article.host[data-host=${name}]`).getAttribute('data-state');
    for (const name of ['h1', 'h2', 'h3']) await expect.poll(() => state(name), { timeout: 60_000 }).toBe('up');
    type Health = { name: string; health: { state: string; probedAt: string; error: string | null } | null };
    const probed = async () => Object.fromEntries((await getJSON<{ hosts: Health[] }>('/api/hosts')).hosts.map((x) => [x.name, x.health!]));

    await hosts.stopSshd('h3');
    try {
      const stoppedAt = Date.now();
      // Down once a probe round has met the dead host: at most a round's interval plus its connect timeout (slack for a loaded machine).
      await page.locator('article.host[data-host=h3][data-state=down]').waitFor({ timeout: PROBE_MS + CONNECT_TIMEOUT_SEC * 1000 + 30_000 });
      await expect(page.locator('article.host[data-host=h3] .bad').innerText()).resolves.toMatch(/connection refused|connection lost|closed|no answer within/);
      // The others stay live: probed again after h3 went down, and up.
      await expect.poll(async () => {
        const now = await probed();
        return ['h1', 'h2'].every((n) => now[n]!.state === 'up' && Date.parse(now[n]!.probedAt) > stoppedAt) && now.h3!.state === 'down';
      }, { timeout: 30_000, interval: 500 }).toBe(true);
      expect(await state('h1')).toBe('up');
      expect(await state('h2')).toBe('up');
      await expect(page.locator('#summary').innerText()).resolves.toMatch(/3 hosts: 2 up, 1 down/);
      await expect(page.locator('#agent').innerText()).resolves.toMatch(/^agent: not running \(make agent starts it/); // no agent in this sandbox
      await page.screenshot({ path: path.join(ARTIFACTS, 'hosts.png'), fullPage: true });
      const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
      await phone.goto(`${dash.url}/hosts`);
      await phone.locator('article.host[data-host=h3][data-state=down]').waitFor({ timeout: 30_000 });
      await phone.screenshot({ path: path.join(ARTIFACTS, 'hosts-phone.png'), fullPage: true });
      await phone.close();
    } finally {
      await hosts.startSshd('h3');
    }
    await expect.poll(() => state('h3'), { timeout: 60_000 }).toBe('up');
    await page.close();
  }, 200_000);
});
