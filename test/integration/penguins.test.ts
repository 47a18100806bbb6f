// competitions/penguins: train.py resumes byte-identically after SIGTERM or SIGKILL; predict.py and score.py.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const COMPETITION = fileURLToPath(new URL('../../competitions/penguins', import.meta.url));
const CKPT_LIB = fileURLToPath(new URL('../../scripts/lib/ckpt', import.meta.url));
const EPOCHS = '1400'; // about 2.5 s on two cores

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** One simulated run: its own checkpoint, output and metrics locations. */
interface RunDirs {
  ckpt: string;
  out: string;
  metrics: string;
}

let root: string;
let baseline: { model: Buffer; metrics: string[]; submission: Buffer };

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'sy-penguins-'));
  const dirs = runDirs('baseline');
  const res = await python(['train.py'], env(dirs));
  expect(res.code, res.stderr).toBe(0);
  baseline = { model: readFileSync(path.join(dirs.out, 'model.json')), metrics: metricLines(dirs), submission: await predict(dirs) };
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function runDirs(name: string): RunDirs {
  const dir = path.join(root, name);
  mkdirSync(dir);
  return { ckpt: path.join(dir, 'ckpt'), out: path.join(dir, 'out'), metrics: path.join(dir, 'metrics.jsonl') };
}

function env(dirs: RunDirs): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWITCHYARD_')));
  return {
    ...inherited,
    PYTHONPATH: CKPT_LIB,
    PYTHONDONTWRITEBYTECODE: '1',
    EPOCHS,
    SWITCHYARD_SEED: '42',
    SWITCHYARD_CKPT_DIR: dirs.ckpt,
    SWITCHYARD_CKPT_EVERY_SEC: '0.3',
    SWITCHYARD_OUTPUT_DIR: dirs.out,
    SWITCHYARD_METRICS: dirs.metrics,
    SWITCHYARD_DATA_DIR: path.join(COMPETITION, 'data'),
  };
}

/** Runs python3 with `args` in the competition folder. */
function python(args: string[], environment: NodeJS.ProcessEnv, interrupt?: Interrupt): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', args, { cwd: COMPETITION, env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = interrupt && setInterval(() => {
      if (!hasCommittedStep(interrupt.ckptDir)) return;
      clearInterval(poll);
      setTimeout(() => child.kill(interrupt.signal), interrupt.afterMs);
    }, 10);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Sends `signal` `afterMs` after the first checkpoint is committed. Progress-based rather than
 * a fixed delay, so the signal lands mid-training on slower and faster machines alike.
 */
interface Interrupt {
  signal: NodeJS.Signals;
  ckptDir: string;
  afterMs: number;
}

function hasCommittedStep(ckptDir: string): boolean {
  if (!existsSync(ckptDir)) return false;
  return readdirSync(ckptDir).some((step) => existsSync(path.join(ckptDir, step, 'manifest.json')));
}

async function predict(dirs: RunDirs): Promise<Buffer> {
  const res = await python(['predict.py'], env(dirs));
  expect(res.code, res.stderr).toBe(0);
  return readFileSync(path.join(dirs.out, 'submission.csv'));
}

/** The metrics lines written so far: none when the signal landed before the first one. */
function metricLines(dirs: RunDirs, fromByte = 0): string[] {
  if (!existsSync(dirs.metrics)) return [];
  return readFileSync(dirs.metrics).subarray(fromByte).toString().split('\n').filter(Boolean);
}

const stepOf = (line: string) => (JSON.parse(line) as { step: number }).step;

/** Interrupts a run, restarts it and checks the end result against the uninterrupted baseline. */
async function interruptAndResume(name: string, signal: NodeJS.Signals): Promise<{ first: Result; resumedFrom: number }> {
  const dirs = runDirs(name);
  // SIGKILL a little later than the checkpoint, so some work after it is lost and redone.
  const first = await python(['train.py'], env(dirs), { signal, ckptDir: dirs.ckpt, afterMs: signal === 'SIGKILL' ? 300 : 100 });
  expect(existsSync(path.join(dirs.out, 'model.json')), 'the first run finished before the signal').toBe(false);
  const firstLines = metricLines(dirs);
  expect(firstLines).toEqual(baseline.metrics.slice(0, firstLines.length));

  const second = await python(['train.py'], env(dirs));
  expect(second.code, second.stderr).toBe(0);
  const resumedFrom = Number(/^resumed from step (\d+)$/m.exec(second.stdout)?.[1]);
  expect(resumedFrom).toBeGreaterThan(0);
  expect(resumedFrom).toBeLessThan(Number(EPOCHS));

  expect(readFileSync(path.join(dirs.out, 'model.json')).equals(baseline.model)).toBe(true);
  const afterResume = metricLines(dirs, Buffer.byteLength(firstLines.map((l) => `${l}\n`).join('')));
  expect(afterResume).toEqual(baseline.metrics.filter((l) => stepOf(l) > resumedFrom));
  expect((await predict(dirs)).equals(baseline.submission)).toBe(true);
  return { first, resumedFrom };
}

describe('competitions/penguins', () => {
  it('trains uninterrupted: metrics every 50 epochs and at the end, a model and a final checkpoint', () => {
    const steps = baseline.metrics.map(stepOf);
    expect(steps.at(-1)).toBe(Number(EPOCHS));
    expect(steps.slice(0, 3)).toEqual([50, 100, 150]);
    const last = JSON.parse(baseline.metrics.at(-1)!) as Record<string, number>;
    expect(Object.keys(last).sort()).toEqual(['loss', 'step', 'train_accuracy']);
    expect(last.train_accuracy).toBeGreaterThan(0.95);
    expect(JSON.parse(baseline.model.toString())).toHaveProperty('weights');
    expect(statSync(path.join(root, 'baseline', 'ckpt', EPOCHS, 'manifest.json')).isFile()).toBe(true);
  });

  it('exits 75 with a checkpoint on SIGTERM and resumes to the same result', async () => {
    const { first, resumedFrom } = await interruptAndResume('sigterm', 'SIGTERM');
    expect(first.code, first.stderr).toBe(75);
    expect(first.stdout).toMatch(new RegExp(`^stop requested: checkpointed step ${resumedFrom}, exiting 75$`, 'm'));
  });

  it('resumes after SIGKILL to the same result', async () => {
    const { first } = await interruptAndResume('sigkill', 'SIGKILL');
    expect(first.signal).toBe('SIGKILL');
  });

  it('scores the predictions and rejects malformed submissions with exit 2', async () => {
    const good = path.join(root, 'baseline', 'out', 'submission.csv');
    const res = await python(['score.py', good], process.env);
    expect(res.code, res.stderr).toBe(0);
    const result = JSON.parse(res.stdout) as { metric: string; score: number; rows: number };
    expect(res.stdout.trim().split('\n')).toHaveLength(1);
    expect(result).toMatchObject({ metric: 'accuracy', rows: 67 });
    expect(result.score).toBeGreaterThan(0.9);

    const lines = baseline.submission.toString().trimEnd().split('\n');
    const bad: [string, string, RegExp][] = [
      ['bad header', ['id,label', ...lines.slice(1)].join('\n'), /header must be id,species/],
      ['missing ids', lines.slice(0, -3).join('\n'), /3 of 67 ids missing/],
      ['unknown species', [...lines.slice(0, -1), `${lines.at(-1)!.split(',')[0]},Emperor`].join('\n'), /unknown species 'Emperor'/],
      ['unknown id', [...lines, '999,Adelie'].join('\n'), /unknown id 999/],
    ];
    for (const [name, text, problem] of bad) {
      const file = path.join(root, `${name.replace(/ /g, '-')}.csv`);
      writeFileSync(file, `${text}\n`);
      const scored = await python(['score.py', file], process.env);
      expect(scored.code, name).toBe(2);
      expect(scored.stdout).toBe('');
      expect(scored.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(scored.stderr).toContain(file);
      expect(scored.stderr).toMatch(problem);
    }
  });
});
