// Loads cluster_fleet_config.ts without tsx on the hot path: the file is bundled once by
// esbuild into .switchyard/cache/config-<sha>.cjs (.mjs when it imports a package) and loaded
// from there while unchanged. What it exports is validated against config-schema.ts, or taken
// from the result of an earlier check of the same value (validation-cache.ts).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { importFile } from '../import-file.js';
import { BUILD_ID, validatedOnce } from '../validation-cache.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import { formatZodIssue } from '../spec/zod-format.js';
import type { Config } from './config-schema.js';

export type { Config, FleetEntry, HostEntry, S3Config } from './config-schema.js';

export const CONFIG_FILE = 'cluster_fleet_config.ts';
export const BACKENDS = ['local', 'ssh', 'fleet', 'gcp-batch', 'slurm'] as const;

/** The repo root: the nearest folder upward from `from` holding cluster_fleet_config.ts. */
export function findRoot(from = process.cwd()): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, CONFIG_FILE))) return dir;
    if (path.dirname(dir) === dir) {
      throw new UserError(`no ${CONFIG_FILE} in ${from} or above; run switchyard from its repository`);
    }
  }
}

/** One digest of the files `paths` (relative to `root`) name, in order; a missing one counts as missing. */
function digestFiles(root: string, paths: string[]): string {
  const hash = createHash('sha256');
  for (const p of paths) {
    hash.update(p).update('\0');
    const file = path.resolve(root, p);
    hash.update(existsSync(file) ? readFileSync(file) : '\0missing\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The inventory compiled by esbuild into .switchyard/cache, reused while it and defineConfig are
 * unchanged. CommonJS, read with require, unless it imports a package (which may be an ES
 * module): starting node's ES module loader for it cost each verb ~4 ms. A config that imports
 * files of its own (a host list in ./inventory.ts) leaves their names in `<key>.imports`, and
 * their contents key the compiled copy too: an edit there is read, not an old copy.
 */
async function compiledConfigPath(root: string): Promise<string> {
  const source = path.join(root, CONFIG_FILE);
  const helper = path.join(root, 'scripts/lib/config/define-config.ts');
  const hash = createHash('sha256').update('cjs-or-esm\0').update(readFileSync(source)); // the salt: earlier versions' .mjs files are not reused
  if (existsSync(helper)) hash.update(readFileSync(helper));
  const base = path.join(root, '.switchyard', 'cache', `config-${hash.digest('hex').slice(0, 16)}`);
  const compiledAt = (key: string) => ['.cjs', '.mjs'].map((ext) => key + ext).find((file) => existsSync(file));
  const found = compiledAt(base);
  if (found) return found;
  const importsFile = `${base}.imports`;
  const importsKey = (imports: string[]) => `${base}-${digestFiles(root, imports)}`;
  if (existsSync(importsFile)) {
    const again = compiledAt(importsKey(JSON.parse(readFileSync(importsFile, 'utf8')) as string[]));
    if (again) return again;
  }
  const { build } = await import('esbuild');
  const compile = (format: 'cjs' | 'esm') =>
    build({ entryPoints: [source], absWorkingDir: root, bundle: true, write: false, metafile: true, format, platform: 'node', packages: 'external', logLevel: 'silent' }).catch(
      (err: { errors?: { text: string; location?: { line: number } }[] }) => {
        const first = err.errors?.[0];
        throw new UserError(`${CONFIG_FILE}${first?.location ? `:${first.location.line}` : ''}: ${first?.text ?? String(err)}`);
      },
    );
  let result = await compile('cjs');
  const importsPackage = Object.values(result.metafile.outputs).some((o) => o.imports.some((i) => i.external));
  if (importsPackage) result = await compile('esm');
  // esbuild names inputs relative to absWorkingDir: the two files the base key covers are left out
  const covered = new Set([CONFIG_FILE, path.relative(root, helper)]);
  const imports = Object.keys(result.metafile.inputs).filter((p) => !covered.has(p)).sort();
  if (imports.length) await writeFileAtomically(importsFile, JSON.stringify(imports));
  const out = (imports.length ? importsKey(imports) : base) + (importsPackage ? '.mjs' : '.cjs');
  await writeFileAtomically(out, result.outputFiles[0]!.contents);
  return out;
}

/** The inventory in `root`, validated: by this build before, or now (one line on a mistake). */
export async function loadConfig(root: string, build: string | null = BUILD_ID): Promise<Config> {
  const compiled = await compiledConfigPath(root);
  const mod = (compiled.endsWith('.cjs') ? createRequire(import.meta.url)(compiled) : await importFile(pathToFileURL(compiled).href)) as { default?: unknown };
  return validatedOnce({ dir: path.dirname(compiled), kind: 'config', build }, mod.default ?? {}, validateConfig);
}

async function validateConfig(raw: unknown): Promise<Config> {
  const { ConfigSchema } = await import('./config-schema.js');
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(formatZodIssue(CONFIG_FILE, parsed.error, ConfigSchema, raw));
  for (const [fleet, { hosts }] of Object.entries(parsed.data.fleets)) {
    const unknown = hosts.find((h) => !(h in parsed.data.hosts));
    if (unknown) {
      throw new UserError(`${CONFIG_FILE}: fleets.${fleet}: unknown host "${unknown}"; add it under hosts`);
    }
  }
  for (const [cluster, { login }] of Object.entries(parsed.data.clusters)) {
    if (login !== 'local' && !(login in parsed.data.hosts)) {
      throw new UserError(`${CONFIG_FILE}: clusters.${cluster}.login: unknown host "${login}"; add it under hosts, or use "local" where sbatch runs on this machine`);
    }
  }
  return parsed.data;
}
