// The env pin: a hash over the lockfiles that define the software environment, plus the
// python and node versions the run would start with.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { run } from '../proc.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';

export interface EnvPin {
  lock_sha256: string;
  /** Lockfiles found, as paths relative to repoRoot. */
  lockfiles: string[];
  python: string | null;
  node: string;
}

const EXPERIMENT_LOCKS = new Set(['uv.lock', 'poetry.lock', 'Pipfile.lock', 'environment.yml', 'pyproject.toml']);
const isExperimentLock = (name: string) =>
  EXPERIMENT_LOCKS.has(name) || (name.startsWith('requirements') && name.endsWith('.txt'));

export async function pinEnv(opts: { repoRoot: string; experimentDir: string }): Promise<EnvPin> {
  const python = pythonVersion(opts.experimentDir);
  // Hashed under location-free names (package-lock.json, experiment/<name>) so moving or
  // renaming the experiment directory does not change the pin; content decides.
  const found: { label: string; path: string }[] = [];
  const rootLock = join(opts.repoRoot, 'package-lock.json');
  if (isFile(rootLock)) found.push({ label: 'package-lock.json', path: rootLock });
  const names = readdirSync(opts.experimentDir, { withFileTypes: true })
    .filter((d) => d.isFile() && isExperimentLock(d.name))
    .map((d) => d.name)
    .sort();
  for (const name of names) found.push({ label: `experiment/${name}`, path: join(opts.experimentDir, name) });

  const lock_sha256 = sha256Hex(
    canonicalJson(found.map((f) => ({ name: f.label, sha256: sha256Hex(readFileSync(f.path)) }))),
  );
  return {
    lock_sha256,
    lockfiles: found.map((f) => relative(opts.repoRoot, f.path).split(sep).join('/')),
    python: await python,
    node: process.version,
  };
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** `python3 --version` run in the experiment dir (pyenv picks the version from there). */
async function pythonVersion(cwd: string): Promise<string | null> {
  try {
    const r = await run(['python3', '--version'], { cwd, allowFail: true, timeout: 15_000 });
    if (r.code !== 0) return null;
    // Python 2 printed its version to stderr.
    return /Python\s+(\S+)/.exec(`${r.stdout.toString()}\n${r.stderr}`)?.[1] ?? null;
  } catch {
    return null; // not installed
  }
}
