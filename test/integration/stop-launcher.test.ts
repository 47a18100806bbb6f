// make stop of a run a foreground launcher follows in another shell, with units still queued
// there: real processes, a launcher (test/helpers/shards-launcher.ts: three shards on this
// machine's one slot) and the stop verb. The launcher is asked to stop the run, so once the
// running shard has ended nothing more starts, and its drive ends with the run stopped. With
// the launcher dead, make stop follows the run itself and closes it. Either way the shards the
// stop cut off before they started read `cancelled`, as the run does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isAlive } from '../../scripts/lib/process-alive.js';
import { desiredRun } from '../../scripts/lib/agent/desired.js';
import { agentHome } from '../../scripts/lib/agent/home.js';
import type { Project } from '../../scripts/lib/project.js';
import { parseRunJson, runState, unitState } from '../../scripts/lib/runs/run-record.js';
import { createSandbox, REPO, waitFor, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
let marks: string;
const children: ChildProcess[] = [];

// Each shard marks its start with its pid, then waits until it is stopped: none ends on its own.
const QUEUED_YAML = (dir: string) => `train:
  command: echo $$ > "$MARK_DIR/$SWITCHYARD_RUN_ID-$SWITCHYARD_SHARD_INDEX" && exec sleep 600
  grace_sec: 5
  env: { MARK_DIR: "${dir}" }
shards:
  count: 3
  merge: concat
`;

beforeAll(() => {
  sb = createSandbox();
  marks = path.join(sb.dir, '.marks');
  mkdirSync(marks);
  writeFileSync(path.join(sb.dir, 'competitions/knn/experiments/queued.yaml'), QUEUED_YAML(marks));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'a search that waits']);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
  for (const f of existsSync(marks) ? readdirSync(marks) : []) {
    try {
      process.kill(Number(readFileSync(path.join(marks, f), 'utf8')), 'SIGKILL');
    } catch {
      // ended with its run
    }
  }
  sb?.cleanup();
});

/** A tsx program in the sandbox's project, in a process group of its own; its lines as they come, and its exit. */
function start(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: sb.dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { pid: child.pid!, lines, exited, output: () => `${lines.join('\n')}\n${stderr}` };
}

/** The shards of the run that have started. */
const started = (runId: string) =>
  readdirSync(marks)
    .filter((f) => f.startsWith(`${runId}-`))
    .map((f) => Number(f.slice(runId.length + 1)))
    .sort();

/** Starts the launcher; resolves once its first shard runs. */
async function launch() {
  const launcher = start([path.join(REPO, 'test/helpers/shards-launcher.ts'), 'knn/queued']);
  const runId = () => launcher.lines.find((l) => l.startsWith('opened '))?.split(' ')[1];
  await waitFor(() => started(runId() ?? '?').length > 0 || launcher.lines.some((l) => l.startsWith('drove')), 60_000, () => `a shard to start: ${launcher.output()}`);
  expect(started(runId()!)).toEqual([0]);
  return { launcher, runId: runId()! };
}

/** The run's record (its units' attempts, and the state it reads), and what the agent's home says is wanted of it. */
async function recorded(runId: string) {
  const record = parseRunJson(readFileSync(path.join(sb.dir, '.switchyard/store/runs', runId, 'run.json'), 'utf8'));
  const home = agentHome({ stateDir: path.join(sb.dir, '.switchyard'), config: { agent: { home: 'local', stale_after_sec: 30 } } } as Project);
  const wanted = (await desiredRun(home, runId))!;
  return { states: record.units.map((u) => u.attempts.map((a) => a.state)), unitStates: record.units.map((u) => unitState(record, u)), state: runState(record), wanted };
}

it('make stop asks the launcher of a run with queued shards to stop it: nothing more starts, and the launcher ends', async () => {
  const { launcher, runId } = await launch();
  const stop = start([path.join(REPO, 'scripts/stop.ts'), `run=${runId}`]);
  let launcherCode: number | null | undefined;
  void launcher.exited.then((code) => (launcherCode = code));
  // Without the stop reaching the launcher, it starts the next queued shard once the first has ended.
  await waitFor(() => launcherCode !== undefined || started(runId).length > 1, 60_000, () => `the launcher to end: ${launcher.output()}\nstop: ${stop.output()}`);
  expect(started(runId), launcher.output()).toEqual([0]);
  expect(launcherCode, launcher.output()).toBe(0);
  expect(launcher.lines).toContain('ended unit 0 cancelled');
  expect(launcher.lines.filter((l) => l.startsWith('started'))).toEqual(['started unit 0']);
  expect(await stop.exited, stop.output()).toBe(0);

  const { states, unitStates, state, wanted } = await recorded(runId);
  expect(states).toEqual([['cancelled'], [], []]);
  expect(unitStates).toEqual(['cancelled', 'cancelled', 'cancelled']);
  expect(state).toBe('cancelled');
  expect(wanted.closed).toMatchObject({ state: 'cancelled', reason: 'make stop' });
  expect(wanted.stop).toBeUndefined();
  // Carried out: the request is gone with the launcher, and a later launch of the run is not stopped by it.
  expect(readdirSync(path.join(sb.dir, '.switchyard/launchers')).filter((f) => !f.endsWith('.lock'))).toEqual([]);
}, 180_000);

it('make stop of a run whose launcher died with shards queued follows the run itself and closes it', async () => {
  const { launcher, runId } = await launch();
  const experiment = Number(readFileSync(path.join(marks, `${runId}-0`), 'utf8'));
  process.kill(-launcher.pid, 'SIGKILL');
  await launcher.exited;
  // The experiment's reaper ends it with its launcher.
  await waitFor(() => !isAlive(experiment, null), 30_000, 'the experiment to end with its launcher');

  const stop = start([path.join(REPO, 'scripts/stop.ts'), `run=${runId}`]);
  expect(await stop.exited, stop.output()).toBe(0);
  const { states, unitStates, wanted } = await recorded(runId);
  expect(states[0]!.at(-1), stop.output()).not.toMatch(/^(queued|pending|running)$/);
  expect(states.slice(1)).toEqual([[], []]);
  expect(unitStates.slice(1)).toEqual(['cancelled', 'cancelled']);
  expect(started(runId)).toEqual([0]);
  expect(wanted.closed).toMatchObject({ state: 'cancelled', reason: 'make stop' });
  expect(wanted.stop).toBeUndefined();
}, 180_000);
