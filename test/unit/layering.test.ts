// The direction between rooms: verbs → actions and agent → runs (and audit) → backends → remote → ssh → proc, with
// the base rooms (store, ledger, pins, ckpt, merge, spec, config, ui, ...) below them all.
// Nothing imports a room above its own, so each room can be understood, tested and reused (a
// SLURM login node reuses remote/, the dashboard reuses actions/) without the ones above it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/sandbox.js';

const LIB = path.join(REPO, 'scripts', 'lib');

/** Lower numbers sit higher; a file may import its own rank or any lower one (a higher number). */
const RANK: Record<string, number> = {
  cli: 0,
  actions: 1,
  // make doctor's checks: they probe every room below (hosts, store, SLURM, Batch)
  doctor: 1,
  // make init: the wizard that writes the inventory and .env
  init: 1,
  // the long-lived owner of the supervisor, beside the actions it drives runs through
  agent: 1,
  runs: 2,
  // what the ledger says of runs, checked against the store (make verify), beside the run records
  audit: 2,
  'project.ts': 2,
  backends: 3,
  remote: 4,
  // what each host is doing (load, memory, disk, GPUs), asked over the pooled connections
  probe: 4,
  // the Google Cloud Batch job a backend submits, rendered, and what Batch says of its tasks
  batch: 4,
  // a SLURM job rendered (sbatch), and what sacct / squeue say of it
  slurm: 4,
  pack: 5,
  ssh: 5,
  runner: 6,
};
const BASE = 7; // store, ledger, pins, ckpt, merge, secrets, spec, config, ui, and the single-file helpers

function roomOf(file: string): string {
  const rel = path.relative(LIB, file);
  return rel.split(path.sep)[0]!;
}
const rankOf = (file: string) => RANK[roomOf(file)] ?? BASE;

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('layering', () => {
  it('no room imports a room above it (type-only imports included)', () => {
    const wrong: string[] = [];
    for (const file of sources(LIB)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
        const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        if (!target.startsWith(LIB)) continue;
        if (rankOf(target) < rankOf(file)) wrong.push(`${path.relative(LIB, file)} imports ${path.relative(LIB, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
