// make stop's request to a run's launcher (runs/launcher-lock.ts): it names the holder it asks,
// so it never stops another process, and a new holder removes an earlier holder's request.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { processStartTime } from '../../scripts/lib/process-alive.js';
import type { Project } from '../../scripts/lib/project.js';
import { askLauncherToStop, holdLauncher, stopAskedOf } from '../../scripts/lib/runs/launcher-lock.js';

let dir: string;
let project: Project;
const RUN = 'knn-20261203T1200-0123abcd';
const request = () => path.join(dir, 'launchers', `${RUN}.stop`);

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'launcher-stop-'));
  project = { stateDir: dir } as Project;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('asks only a live holder, never this process; a later holder is not stopped by the request', async () => {
  expect(await askLauncherToStop(project, RUN, { force: false })).toBeNull(); // nobody follows the run
  const release = (await holdLauncher(project, RUN))!;
  expect(await askLauncherToStop(project, RUN, { force: false })).toBeNull(); // this process holds it
  expect(existsSync(request())).toBe(false);
  release();

  // Another process holds the run and is asked; the request is not this process's.
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    mkdirSync(path.join(dir, 'launchers'), { recursive: true });
    writeFileSync(path.join(dir, 'launchers', `${RUN}.pid`), `${other.pid} ${processStartTime(other.pid!) ?? ''}\n`);
    expect(await askLauncherToStop(project, RUN, { force: true })).toBe(other.pid);
    expect(existsSync(request())).toBe(true);
  } finally {
    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
  }
  // The asked holder died first: the next one takes the run without the stop meant for it.
  const mine = (await holdLauncher(project, RUN))!;
  expect(existsSync(request())).toBe(false);
  expect(stopAskedOf(project, RUN)()).toBeNull();
  mine();
});

it('the holder sees a stop asked of it, with its force; a request naming another holder is removed', async () => {
  const release = (await holdLauncher(project, RUN))!;
  const asked = stopAskedOf(project, RUN);
  expect(asked()).toBeNull();
  writeFileSync(request(), JSON.stringify({ holder: `${process.pid} ${processStartTime(process.pid) ?? ''}\n`, force: true }));
  expect(asked()).toEqual({ force: true });
  writeFileSync(request(), JSON.stringify({ holder: '1 0\n', force: false }));
  expect(asked()).toBeNull();
  expect(existsSync(request())).toBe(false);
  writeFileSync(request(), JSON.stringify({ holder: `${process.pid} ${processStartTime(process.pid) ?? ''}\n`, force: false }));
  release(); // carried out: gone with the hold
  expect(existsSync(request())).toBe(false);
});
