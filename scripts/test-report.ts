// make test: the whole vitest suite, then one plain summary line (`N passed, N failed`)
// read from vitest's JSON report, so CI and people see the same count.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const report = path.resolve('.switchyard', 'test-results.json');
mkdirSync(path.dirname(report), { recursive: true });
rmSync(report, { force: true }); // never report a previous run's numbers
// The stuck reporter ends a suite whose file has hung, naming it, rather than letting it run on.
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', '--reporter=./test/helpers/stuck-reporter.ts', `--outputFile.json=${report}`, ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: 'inherit' });
const code: number = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));

try {
  const r = JSON.parse(readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number };
  const skipped = r.numPendingTests + r.numTodoTests;
  process.stdout.write(`${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
} catch {
  process.stdout.write('0 passed, 1 failed\n');
}
process.exitCode = code;
