// The dashboard in headless Chromium over a sandbox where make train runs: the runs table lists
// the run, its page shows the log growing and the chart gaining points, Stop from the page stops
// it and make status agrees. Screenshots (desktop and phone width) land in test-artifacts/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium, startDashboard, type RunningDashboard } from '../helpers/dashboard.js';
import { createSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

const TOKEN = 'dashboard-test-token-0123456789abcdef';
let sb: Sandbox;
let dash: RunningDashboard;
let chromium: Awaited<ReturnType<typeof launchChromium>>;
let browser: Browser;
let train: ReturnType<Sandbox['spawnMake']> | undefined;

beforeAll(async () => {
  sb = createSandbox();
  writeFileSync(path.join(sb.dir, '.env'), `SWITCHYARD_DASHBOARD_TOKEN=${TOKEN}\n`);
  // Long enough to watch and stop: a line a second; checkpoints (and the store's copy of the
  // metrics) a minute apart, so a chart that grows sooner reads the attempt's own file.
  const base = readFileSync(path.join(sb.dir, 'competitions/penguins/experiment.yaml'), 'utf8');
  writeFileSync(path.join(sb.dir, 'competitions/penguins/experiments/long.yaml'), base.replace('EPOCHS: "8000"', 'EPOCHS: "2000000"').replace('checkpoint_every_sec: 2', 'checkpoint_every_sec: 60'));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'long penguins']);
  dash = await startDashboard(sb);
  chromium = await launchChromium();
  browser = chromium.browser;
  mkdirSync(ARTIFACTS, { recursive: true });
}, 300_000);

afterAll(async () => {
  if (train?.exitCode === null) process.kill(-train.pid!, 'SIGKILL');
  await chromium?.close();
  await dash?.stop();
  sb?.cleanup();
});

async function signIn(page: Page): Promise<void> {
  await page.goto(`${dash.url}/login`);
  await page.fill('input[name=token]', TOKEN);
  await Promise.all([page.waitForURL(`${dash.url}/`), page.click('button[type=submit]')]);
  await page.waitForSelector('header.top >> text=sign out');
}

describe('dashboard in a browser', () => {
  let runId: string;

  it('lists a run made by make train; its page shows the log growing and the chart gaining points', async () => {
    train = sb.spawnMake(['train', 'experiment=penguins/long']);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page);
    // The table refreshes itself every few seconds: the run appears without a reload.
    const row = page.locator('#runs tbody tr', { hasText: 'penguins/long' });
    await row.first().waitFor({ timeout: 120_000 });
    runId = (await row.first().getAttribute('data-run'))!;
    expect(runId).toMatch(/^penguins-long-\d{8}T\d{4}-[0-9a-f]{8}$/);
    await page.locator('#runs tbody tr', { hasText: 'running' }).first().waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'runs.png'), fullPage: true });

    await page.click(`a[href="/runs/${runId}"]`);
    await page.waitForSelector('#log-state >> text=live');
    const logLines = async () => (await page.locator('#log').innerText()).split('\n').filter((l) => /^epoch \d+/.test(l)).length;
    const points = async () => Number((await page.locator('#chart').getAttribute('data-points')) ?? 0);
    await expect.poll(logLines, { timeout: 60_000, interval: 250 }).toBeGreaterThan(0);
    const firstLines = await logLines();
    await expect.poll(logLines, { timeout: 60_000, interval: 250 }).toBeGreaterThan(firstLines);
    await expect.poll(points, { timeout: 60_000, interval: 500 }).toBeGreaterThan(0);
    const firstPoints = await points();
    await expect.poll(points, { timeout: 60_000, interval: 500 }).toBeGreaterThan(firstPoints);
    expect(await page.locator('#chart canvas').count()).toBeGreaterThan(0);
    await expect(page.locator('#chart-note').innerText()).resolves.toContain('live from where it runs');
    // Search covers the whole log.
    await page.fill('#log-search', 'epoch');
    await expect.poll(async () => page.locator('#log-results li').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await page.fill('#log-search', '');
    await page.screenshot({ path: path.join(ARTIFACTS, 'run.png'), fullPage: true });
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    await phone.goto(`${dash.url}/runs/${runId}`);
    await phone.waitForSelector('#chart canvas', { timeout: 30_000 });
    await phone.screenshot({ path: path.join(ARTIFACTS, 'run-phone.png'), fullPage: true });
    await phone.goto(`${dash.url}/`);
    await phone.locator('#runs tbody tr').first().waitFor();
    await phone.screenshot({ path: path.join(ARTIFACTS, 'runs-phone.png'), fullPage: true });
    await phone.close();

    // Stop from the page, confirmed in its dialog; make status agrees.
    await page.click('#actions button:has-text("Stop")');
    await page.click('dialog.confirm button.danger');
    await page.waitForSelector('.toast >> text=/Stop: (stopped|still running)/', { timeout: 120_000 });
    await waitFor(() => train!.exitCode !== null, 120_000, 'make train to end');
    const status = sb.make(['status', `run=${runId}`]);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toMatch(/cancelled/);
    expect(status.stdout.replace(/^agent: .*$/m, '')).not.toMatch(/\brunning\b/); // the agent's own line aside
    const ledger = readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8');
    expect(ledger).toMatch(new RegExp(`"type":"dashboard.action","who":"session-[^"]+","action":"stop","run_id":"${runId}"[^\\n]*"result":"ok"`));
    await page.close();
  }, 400_000);
});
