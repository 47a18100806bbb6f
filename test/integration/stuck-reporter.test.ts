// The stuck reporter against a real hang: a vitest run whose one test blocks its worker in a
// synchronous spawn that never returns (no test timeout can fire) is ended at the file limit,
// naming the file and the process it waits on, and leaves no process behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO } from '../helpers/sandbox.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-stuck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('ends a suite whose worker is blocked, naming the file and what it waits on, and kills it', async () => {
  const marker = `switchyard-stuck-${process.pid}`;
  writeFileSync(path.join(dir, 'blocked.test.mjs'), `import { spawnSync } from 'node:child_process';\nimport { it } from 'vitest';\nit('blocks', () => { spawnSync('bash', ['-c', 'sleep 600; : ${marker}']); });\n`);
  writeFileSync(path.join(dir, 'vitest.config.mjs'), 'export default { test: { include: ["*.test.mjs"] } };\n');
  const vitest = path.join(REPO, 'node_modules', 'vitest', 'vitest.mjs');
  const child = spawn(process.execPath, [vitest, 'run', '--root', dir, '--reporter=default', `--reporter=${path.join(REPO, 'test/helpers/stuck-reporter.ts')}`], {
    cwd: REPO,
    env: { ...process.env, SWITCHYARD_TEST_FILE_LIMIT_MIN: '0.05' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  expect(code, out).toBe(1);
  expect(out).toContain('test: a file ran past 3 s; ending the suite.');
  expect(out).toMatch(/^ {2}blocked\.test\.mjs for \d+ s/m);
  expect(out).toContain(`sleep 600`);
  expect(existsSync(`/proc/${child.pid}`)).toBe(false);
  expect(spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' }).stdout.trim()).toBe('');
}, 120_000);
