// The whole project type-checks under strict settings: a test, so CI holds the line.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { REPO } from '../helpers/sandbox.js';

it('tsc --noEmit reports no errors', () => {
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], { cwd: REPO, encoding: 'utf8' });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 120_000);
