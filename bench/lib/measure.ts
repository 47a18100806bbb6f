// What the benchmarks share: a clock, the median of rounds, and repositories of random files or
// of source code.
import { randomFillSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SYNC_EXCLUDES } from '../../scripts/lib/ssh/rsync.js';

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

// Names a push leaves out wherever they are (the built-in sync excludes without a wildcard or a
// slash), so every file copied is sent.
const SKIPPED = new Set(SYNC_EXCLUDES.filter((e) => !/[*/]/.test(e)));

/**
 * Up to `files` files of real source code, `mb` MB at most: the JavaScript of the installed npm
 * packages (files of 2-200 KiB, in path order, so the same lockfile gives the same tree). Made
 * once and kept (`.done`).
 */
export function makeSourceRepo(dir: string, mb: number, files: number): void {
  if (existsSync(path.join(dir, '.done'))) return;
  const from = path.resolve('node_modules');
  let bytes = 0;
  let count = 0;
  const walk = (rel: string): boolean => {
    for (const d of readdirSync(path.join(from, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const name = path.join(rel, d.name);
      if (d.isDirectory() && SKIPPED.has(d.name)) continue;
      if (d.isDirectory() && walk(name)) return true;
      if (!d.isFile() || !d.name.endsWith('.js')) continue;
      const { size } = statSync(path.join(from, name));
      if (size < 2048 || size > 200 * 1024) continue;
      if (bytes + size > mb * 1024 * 1024 || count === files) return true;
      mkdirSync(path.join(dir, rel), { recursive: true });
      copyFileSync(path.join(from, name), path.join(dir, name));
      bytes += size;
      count++;
    }
    return false;
  };
  walk('.');
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
