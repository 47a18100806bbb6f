// What the benchmarks share: a clock, the median of rounds, and a repository of random files.
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Seconds, for timing one step. */
export const now = () => performance.now() / 1000;

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `files` files of random bytes, `mb` MB in all, in 40 folders; made once and kept (`.done`). */
export function makeRandomRepo(dir: string, mb: number, files: number): void {
  if (existsSync(path.join(dir, '.done'))) return;
  const buf = Buffer.alloc(Math.floor((mb * 1024 * 1024) / files));
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, `pkg${i % 40}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `f${i}.bin`), randomFillSync(buf));
  }
  writeFileSync(path.join(dir, '.done'), '');
}

/**
 * A bench's size (units, tasks, jobs, files, MB, hosts) from the environment variable `name`,
 * else its default: how a bench's cost grows is measured by running it at three sizes. Targets
 * are set for the default size.
 */
export function sizeFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${raw}: give a whole number of at least 1`);
  return n;
}
