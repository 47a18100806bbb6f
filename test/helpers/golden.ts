// Golden files: a rendered artifact compared with the copy kept under test/golden/. A mismatch
// fails with a diff; UPDATE_GOLDEN=1 writes the new rendering instead (review it with git diff).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { REPO } from './sandbox.js';

export function expectGolden(name: string, actual: string): void {
  const file = path.join(REPO, 'test', 'golden', name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) throw new Error(`golden file test/golden/${name} is missing; run the test with UPDATE_GOLDEN=1 and commit it`);
  expect(actual, `test/golden/${name} differs from the rendering (UPDATE_GOLDEN=1 rewrites it)`).toBe(readFileSync(file, 'utf8'));
}
