// The inventory's schema: every field of cluster_fleet_config.ts, its default, and the one-line
// error for each mistake. Building these zod schemas costs a verb's start ~8 ms, so loadConfig
// (load-config.ts) imports this module only when it has to validate: a config exported unchanged
// since its last check is read from the cache instead (validation-cache.ts).
import { z } from 'zod';
import { checkRemotePath } from '../quote.js';
import { BatchSchema } from './batch-config.js';
import { batchStoreProblem } from './batch-store.js';
import { ClusterSchema } from './cluster-config.js';
import { BACKENDS } from './load-config.js';

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
