// Loads cluster_fleet_config.ts without tsx on the hot path: the file is bundled once by
// esbuild into .switchyard/cache/config-<sha>.cjs (.mjs when it imports a package) and loaded
// from there while unchanged.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { importFile } from '../import-file.js';
import { checkRemotePath } from '../quote.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import { formatZodIssue } from '../spec/zod-format.js';
import { batchStoreProblem, BatchSchema } from './batch-config.js';
import { ClusterSchema } from './cluster-config.js';

export const CONFIG_FILE = 'cluster_fleet_config.ts';
export const BACKENDS = ['local', 'ssh', 'fleet', 'gcp-batch', 'slurm'] as const;

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'letters, digits, - and _ only');

/** S3 client settings; credentials come from AWS_* variables in .env or the environment. */
export const S3Schema = z.strictObject({
  endpoint: z.url({ protocol: /^https?$/, error: 'an http(s):// URL, e.g. "http://127.0.0.1:9000"' }).optional(),
  region: z.string().min(1).default('us-east-1'),
  force_path_style: z.boolean().default(false),
});

export const HostSchema = z.strictObject({
  host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a host name, address or ssh alias'),
  port: z.number().int().min(1).max(65535).default(22),
  user: Name.optional(),
  identity_file: z.string().optional(),
  /** the project's folder on the host, relative to the login directory */
  root: z.string().default('switchyard'),
  /** the known_hosts file host keys are checked against (default ~/.ssh/known_hosts) */
  known_hosts: z.string().optional(),
  connect_timeout: z.number().positive().max(300).default(10),
  /** `auto`: the host's Node when it is >= 20, else a pinned runtime shipped to it; `ship`: always ship */
  node: z.enum(['auto', 'ship']).default('auto'),
  labels: z.record(z.string(), z.union([z.string(), z.number()])).default({}),
  python: z.enum(['uv', 'venv']).optional(),
  /** GPUs an attempt there can use; a spec asking for more is refused before it runs */
  gpus: z.number().int().min(0).max(64).default(0),
  /** what the host costs an hour, in USD: make hosts and the dashboard price runs placed there */
  price_per_hour: z.number().min(0, 'US dollars an hour, at least 0').meta({ example: '1.25' }).optional(),
});

export type HostEntry = z.infer<typeof HostSchema>;

/** A path on a remote host, by the rule every remote path follows (checkRemotePath). */
const RemotePath = z.string().superRefine((p, ctx) => {
  try {
    checkRemotePath(p);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export const FleetSchema = z.strictObject({
  hosts: z.array(Name).min(1),
  per_host: z.number().int().min(1).max(64).default(1),
  root: RemotePath.optional(),
  output_dir: RemotePath.optional(),
  session_prefix: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,15}$/, 'a short name: letters, digits, - and _').default('sy'),
  sync_excludes: z.array(z.string().min(1)).default([]),
  sync_parallel: z.number().int().min(1).max(64).default(8),
  requeue: z.boolean().default(true),
  lost_after_sec: z.number().positive().max(3600).default(30),
});

export type FleetEntry = z.infer<typeof FleetSchema>;

export const AgentSchema = z.strictObject({
  home: z.enum(['local', 'store']).default('local'),
  stale_after_sec: z.number().int().min(5).max(3600).default(30),
});

export const ConfigSchema = z.strictObject({
  defaults: z
    .strictObject({
      backend: z.enum(BACKENDS).default('local'),
      store: z
        .string()
        .regex(/^(file|s3):\/\/.+/, 'a file://<dir> or s3://bucket/prefix URL')
        .default('file://.switchyard/store'),
      max_attempts: z.number().int().min(1).max(100).default(5),
      s3: S3Schema.optional(),
    })
    .prefault({}),
  hosts: z.record(Name, HostSchema).default({}),
  // The short form, a list of host names, is a fleet with every default.
  fleets: z.record(Name, z.union([z.array(Name).min(1).transform((hosts) => FleetSchema.parse({ hosts })), FleetSchema])).default({}),
  batch: z.record(Name, BatchSchema).default({}),
  clusters: z.record(Name, ClusterSchema).default({}),
  agent: AgentSchema.prefault({}),
}).superRefine((c, ctx) => {
  for (const [name, entry] of Object.entries(c.batch)) {
    const problem = batchStoreProblem(entry, c.defaults.store);
    if (problem) ctx.addIssue({ code: 'custom', path: ['batch', name, 'store'], message: problem });
  }
});

export type Config = z.infer<typeof ConfigSchema>;
export type S3Config = z.infer<typeof S3Schema>;

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

export async function loadConfig(root: string): Promise<Config> {
  const compiled = await compiledConfigPath(root);
  const mod = (compiled.endsWith('.cjs') ? createRequire(import.meta.url)(compiled) : await importFile(pathToFileURL(compiled).href)) as { default?: unknown };
  const parsed = ConfigSchema.safeParse(mod.default ?? {});
  if (!parsed.success) throw new UserError(formatZodIssue(CONFIG_FILE, parsed.error, ConfigSchema, mod.default ?? {}));
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
