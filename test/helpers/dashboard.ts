// The dashboard as the operator starts it (make dashboard in a sandbox), and headless Chromium
// (Debian's, driven by playwright-core) to look at it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { waitFor, type Sandbox } from './sandbox.js';

export interface RunningDashboard {
  url: string;
  output: () => string;
  stop(): Promise<void>;
}

/** `make dashboard port=0 …` in the sandbox; resolves once it listens. */
export async function startDashboard(sb: Sandbox, vars: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningDashboard> {
  const child = sb.spawnMake(['dashboard', 'port=0', ...vars], env);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let code: number | null = null;
  child.once('exit', (c) => (code = c ?? -1));
  await waitFor(() => /dashboard on http:\/\/\S+:\d+\//.test(child.output()) || code !== null, 120_000, 'the dashboard to listen');
  const m = /dashboard on (http:\/\/\S+:\d+)\//.exec(child.output());
  if (!m) throw new Error(`the dashboard did not start (exit ${code}): ${child.output()}`);
  return {
    url: m[1]!,
    output: () => child.output(),
    async stop() {
      if (code === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    },
  };
}

/** Debian's Chromium, headless, with a fresh profile (playwright makes one per launch) and its own HOME. */
export async function launchChromium(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'switchyard-chromium-'));
  const browser = await chromium.launch({
    executablePath: '/usr/lib/chromium/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    env: { ...process.env, HOME: home },
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Where screenshots go: test-artifacts/ at the repository root (git-ignored). */
export const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');
