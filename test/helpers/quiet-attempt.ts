// A running local attempt whose stderr.log is empty and stays so: this process stands in for its
// runner (alive throughout), so a follow of that log never ends on its own.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { processStartTime } from '../../scripts/lib/process-alive.js';
import { workPaths } from '../../scripts/lib/runner/attempt-runner.js';

export function quietLocalAttempt(tmp: string) {
  const workDir = path.join(tmp, 'work');
  const dir = workPaths(workDir, 1).attempt;
  mkdirSync(dir, { recursive: true });
  const log = path.join(dir, 'stderr.log');
  writeFileSync(log, '');
  writeFileSync(path.join(dir, 'status.json'), JSON.stringify({ run_id: 'r', attempt: 1, state: 'running' }));
  const handle = { backend: 'local' as const, pid: process.pid, pid_start: processStartTime(process.pid), run_id: 'r', unit: 'r', work_dir: workDir, attempt: 1, detached: true };
  return { workDir, log, handle };
}
