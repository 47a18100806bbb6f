// The env pin: a hash over the lockfiles that define the software environment, plus the
// python and node versions the run would start with.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve, sep } from 'node:path';
import { run } from '../proc.js';
import { writeFileAtomically } from '../store/atomic-file.js';
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

export async function pinEnv(opts: { repoRoot: string; experimentDir: string; cacheFile?: string }): Promise<EnvPin> {
  const python = cachedPythonVersion(opts.experimentDir, opts.cacheFile);
  // Hashed under location-free names (package-lock.json, experiment/<name>) so moving or
  // renaming the experiment directory does not change the pin; content decides.
  const found: { label: string; path: string }[] = [];
  const rootLock = join(opts.repoRoot, 'package-lock.json');
  if (isFile(rootLock)) found.push({ label: 'package-lock.json', path: rootLock });
  // A symlinked lockfile (to one shared by several experiments, say) counts with its target's content.
  const names = readdirSync(opts.experimentDir, { withFileTypes: true })
    .filter((d) => isExperimentLock(d.name) && (d.isFile() || (d.isSymbolicLink() && isFile(join(opts.experimentDir, d.name)))))
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

/**
 * What decides which python3 would run in `cwd`: the executable found on PATH (identified by
 * inode, size and mtime) and, for a pyenv shim, the version selection pyenv reads (env var,
 * nearest .python-version, global version file). Null when there is no python3 on PATH.
 */
function interpreterKey(cwd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const exe = join(dir, 'python3');
    const st = statSync(exe, { throwIfNoEntry: false });
    if (!dir || !st?.isFile()) continue;
    const parts = [exe, st.ino, st.size, st.mtimeMs];
    if (exe.includes(`${sep}shims${sep}`)) {
      const readOr = (file: string) => (isFile(file) ? readFileSync(file, 'utf8').trim() : '');
      let local = '';
      for (let d = resolve(cwd); !local && d !== dirname(d); d = dirname(d)) local = readOr(join(d, '.python-version'));
      parts.push(process.env.PYENV_VERSION ?? '', local, readOr(join(dirname(dirname(exe)), 'version')));
    }
    return sha256Hex(parts.join('\0'));
  }
  return null;
}

/**
 * The python version, from a small cache keyed by interpreterKey(): `python3 --version` costs
 * ~70 ms through a pyenv shim, a third of a verb's start-up budget.
 */
async function cachedPythonVersion(cwd: string, cacheFile?: string): Promise<string | null> {
  const key = cacheFile ? interpreterKey(cwd) : null;
  if (!key || !cacheFile) return pythonVersion(cwd);
  let cache: Record<string, string | null> = {};
  try {
    cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, string | null>;
  } catch {
    // no cache yet, or a damaged one: rebuilt below
  }
  if (key in cache) return cache[key] ?? null;
  const version = await pythonVersion(cwd);
  cache[key] = version;
  await writeFileAtomically(cacheFile, JSON.stringify(cache));
  return version;
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
