// A crash anywhere in a save leaves a complete step: a real process saving multi-MB steps in a
// loop is SIGKILLed at random moments; afterwards the latest step verifies and no reported save is lost.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { latestCheckpoint } from '../../scripts/lib/ckpt/checkpoint.js';
import { expectIntact } from '../helpers/checkpoints.js';

const REPO = resolve(import.meta.dirname, '../..');
const CKPT_MODULE = join(REPO, 'scripts/lib/ckpt/checkpoint.ts');

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sy-ckpt-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const quiet = { report: () => {} };

describe('fault: a crash anywhere in a save leaves a complete step', () => {
  it('SIGKILL at random moments over 30 runs of a saving process', { timeout: 240_000 }, async () => {
    const runner = join(root, 'saver.mjs');
    await writeFile(runner, SAVER_SOURCE.replace('CKPT_URL', pathToFileURL(CKPT_MODULE).href));
    const dir = join(root, 'ckpt');
    let lastSaved = -1;
    for (let trial = 0; trial < 30; trial++) {
      // Every other trial counts its random moment from its first save, not from its start: the
      // steps advance on a loaded machine too, however long a save takes there.
      const saved = await runAndKill(runner, dir, Math.random() * 400, trial % 2 === 1);
      lastSaved = Math.max(lastSaved, saved);
      const found = await latestCheckpoint(dir, quiet);
      if (lastSaved >= 0) {
        expect(found, `trial ${trial}`).not.toBeNull();
        expect(found!.step).toBeGreaterThanOrEqual(lastSaved); // a reported save is never lost
        await expectIntact(found!, bigFiles);
      }
    }
    expect(lastSaved).toBeGreaterThanOrEqual(14); // each of the 15 trials timed from a save added one
  });
});

/** Multi-MB blobs; must match bigFiles in SAVER_SOURCE. */
function bigFiles(step: number): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [i, name] of ['a.bin', 'b.bin', 'sub/c.bin'].entries()) {
    const blob = Buffer.alloc((1 + ((step + i) % 3)) * 1024 * 1024 + step, (step * 7 + i) % 256);
    blob.write(`step ${step} ${name}\n`);
    out[name] = blob;
  }
  return out;
}

const SAVER_SOURCE = `
import { latestCheckpoint, saveCheckpoint } from 'CKPT_URL';
${bigFiles.toString()}
const dir = process.argv[2];
const found = await latestCheckpoint(dir, { report: () => {} });
let step = found ? found.step + 1 : 0;
process.stdout.write('ready\\n');
for (;;) {
  await saveCheckpoint(dir, step, bigFiles(step), { keep: 2 });
  process.stdout.write('saved ' + step + '\\n');
  step++;
}
`;

/** Starts the saver, SIGKILLs it `delayMs` after it is ready (or has saved a step); the last step it reported saved. */
function runAndKill(runner: string, dir: string, delayMs: number, afterASave: boolean): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', runner, dir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!timer && (afterASave ? /^saved \d+$/m.test(out) : out.includes('ready\n'))) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`saver exited ${code}: ${err}`));
      const saved = [...out.matchAll(/^saved (\d+)$/gm)].map((m) => Number(m[1]));
      resolvePromise(saved.length ? saved[saved.length - 1]! : -1);
    });
  });
}
