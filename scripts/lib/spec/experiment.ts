// Experiment specs: competitions/<slug>/experiment.yaml (the default) or
// competitions/<slug>/experiments/<name>.yaml, validated once here into fully defaulted values.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BACKENDS } from '../config/load-config.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import { parseYaml } from './yaml.js';
import { formatZodIssue } from './zod-format.js';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const NAME_RULE = 'lowercase letters, digits, - and _, starting with a letter or digit';

const DURATION = /^(\d+)(s|m|h|d)$/;

/** "90m" → 5400. */
export function durationSec(text: string): number {
  const [, n, unit] = DURATION.exec(text)!;
  return Number(n) * { s: 1, m: 60, h: 3600, d: 86400 }[unit as 's' | 'm' | 'h' | 'd'];
}

/** Text a process can be given: argv and environment strings end at a NUL byte, the one byte they cannot hold. */
const ProcessText = z.string().refine((s) => !s.includes('\0'), 'contains a NUL byte, which no command or environment variable can hold; remove it');
const Command = z.union([ProcessText.trim().min(1), z.array(ProcessText.min(1)).min(1)]);
const RelPath = z
  .string()
  .min(1)
  .refine((p) => !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..'), 'a path inside the run folder');

export const ExperimentSchema = z.strictObject({
  setup: Command.optional(),
  train: z.strictObject({
    command: Command,
    checkpoint_every_sec: z.number().positive().default(60),
    grace_sec: z.number().positive().max(3600).default(60),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), ProcessText).default({}),
    keep_checkpoints: z.number().int().min(1).default(3),
  }),
  predict: z.strictObject({ command: Command, output: RelPath }).optional(),
  submit: z.strictObject({ file: RelPath, message: z.string().default('') }).optional(),
  data: z
    .strictObject({
      dir: z.string().min(1),
      include: z.array(z.string().min(1)).default(['**']),
      exclude: z.array(z.string().min(1)).default([]),
    })
    .optional(),
  /** names of .env keys the experiment needs (API tokens): pushed to workers as a 0600 file */
  secrets: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')).default([]),
  seed: z.number().int().min(0).default(0),
  backends: z.array(z.enum(BACKENDS)).min(1).optional(),
  resources: z
    .strictObject({
      cpus: z.number().int().min(1).default(1),
      gpus: z.number().int().min(0).default(0),
      gpu_type: z.string().min(1).optional(),
      memory: z.string().regex(/^\d+(\.\d+)?[KMGT]i?B?$/, 'a size like "4G" or "512M"').optional(),
      /** each attempt's time limit: past it the runner checkpoints and stops it (state timeout) */
      time: z.string().regex(DURATION, 'a duration like "90m", "2h" or "1d"').optional(),
      /** run on spot / preemptible capacity (backends that have it) */
      spot: z.boolean().default(false),
    })
    .prefault({}),
  shards: z
    .strictObject({
      count: z.number().int().min(1).default(1),
      merge: z.enum(['concat', 'best-by-score', 'command']).default('concat'),
      /** best-by-score: the numeric record field that ranks records of one key */
      score_field: z.string().min(1).optional(),
      /** best-by-score: default true */
      higher_is_better: z.boolean().optional(),
      /** command: run with the verified shard files as arguments; writes $SWITCHYARD_MERGED_FILE */
      merge_command: Command.optional(),
    })
    .prefault({})
    .superRefine((s, ctx) => {
      if (s.merge === 'best-by-score' && !s.score_field) {
        ctx.addIssue({ code: 'custom', path: ['score_field'], message: 'required with merge: best-by-score, e.g. "loo_accuracy"' });
      }
      if (s.merge === 'command' && !s.merge_command) {
        ctx.addIssue({ code: 'custom', path: ['merge_command'], message: 'required with merge: command, e.g. "python3 merge.py"' });
      }
    }),
});

export type ExperimentSpec = z.infer<typeof ExperimentSchema>;
export type CommandSpec = z.infer<typeof Command>;

const EXAMPLES: Record<string, string> = {
  train: 'train: { command: python3 train.py }',
  'train.command': '"python3 train.py"',
  'predict.command': '"python3 predict.py"',
  'predict.output': '"submission.csv"',
  'submit.file': '"submission.csv"',
  'data.dir': '"data"',
  seed: '42',
};

export interface Experiment {
  /** `<slug>/<name>` as typed, normalised */
  ref: string;
  slug: string;
  name: string;
  /** spec file, relative to the repo root (used in messages) */
  file: string;
  competitionDir: string;
  dataDir: string | null;
  spec: ExperimentSpec;
}

/** Checks a user-supplied name before it is used as a path or reaches any command. */
export function checkName(what: string, value: string, example: string): string {
  if (!NAME_RE.test(value)) {
    throw new UserError(`${what}: ${JSON.stringify(value)} is not a valid name; use ${NAME_RULE} (e.g. ${example})`);
  }
  return value;
}

export function parseExperimentRef(ref: string | undefined): { slug: string; name: string } {
  if (!ref) throw new UserError('experiment: required, e.g. make train experiment=penguins');
  const [slug, name, ...rest] = ref.split('/');
  if (rest.length || !NAME_RE.test(slug!) || (name !== undefined && !NAME_RE.test(name))) {
    throw new UserError(
      `experiment: ${JSON.stringify(ref)} is not a valid name; use <competition> or <competition>/<name>, each of ${NAME_RULE} (e.g. penguins or penguins/fast)`,
    );
  }
  return { slug: slug!, name: name ?? 'default' };
}

/** The spec file of an experiment, relative to the repo root. */
export function experimentFile({ slug, name }: { slug: string; name: string }): string {
  return path.join('competitions', slug, name === 'default' ? 'experiment.yaml' : `experiments/${name}.yaml`);
}

function listDir(dir: string, suffix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .map((f) => f.slice(0, f.length - suffix.length))
    .sort();
}

/**
 * The largest spec read. A spec is configuration written by hand (the examples are under
 * 1 KiB); the YAML parser reads well under 1 MB/s on a busy 2-core machine, so 64 KiB keeps
 * the worst first parse of a spec to about a tenth of a second of a verb's start-up, and every
 * run record, which holds the spec, small.
 */
export const MAX_SPEC_BYTES = 64 * 1024;

/**
 * YAML parsed once per content: the yaml module costs ~35 ms to load, a third of a verb's
 * start-up budget, so the parsed document is cached under .switchyard/cache by content hash.
 */
async function readYaml(root: string, file: string): Promise<unknown> {
  const size = statSync(path.join(root, file)).size;
  if (size > MAX_SPEC_BYTES) {
    const human = size >= 1 << 20 ? `${(size / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(size / 1024)} KiB`;
    throw new UserError(`${file}: ${human}, over the ${MAX_SPEC_BYTES / 1024} KiB a spec may be; a spec is configuration: keep data in data.dir and variants in experiments/<name>.yaml`);
  }
  const text = readFileSync(path.join(root, file));
  const cached = path.join(root, '.switchyard', 'cache', `yaml-${createHash('sha256').update(text).digest('hex').slice(0, 32)}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8'));
  const value = await parseYaml(file, text.toString('utf8'));
  await writeFileAtomically(cached, JSON.stringify(value));
  return value;
}

export async function loadExperiment(root: string, ref: string | undefined): Promise<Experiment> {
  const { slug, name } = parseExperimentRef(ref);
  const competitionDir = path.join(root, 'competitions', slug);
  if (!existsSync(competitionDir)) {
    const known = listDir(path.join(root, 'competitions'));
    throw new UserError(
      `experiment: no competition "${slug}" (known: ${known.join(', ') || 'none'}); create it with make competition-new competition=${slug}`,
    );
  }
  const file = experimentFile({ slug, name });
  if (!existsSync(path.join(root, file))) {
    const known = listDir(path.join(competitionDir, 'experiments'), '.yaml');
    throw new UserError(`${file}: no such experiment (known for ${slug}: default${known.map((k) => `, ${k}`).join('')})`);
  }
  const raw = await readYaml(root, file);
  const parsed = ExperimentSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(formatZodIssue(file, parsed.error, ExperimentSchema, raw, EXAMPLES));
  const spec = parsed.data;

  let dataDir: string | null = null;
  if (spec.data) {
    dataDir = path.resolve(competitionDir, spec.data.dir);
    if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) {
      throw new UserError(`${file}: data.dir: ${path.relative(root, dataDir) || dataDir} is not a directory; create it or fix the path`);
    }
    // Data is pinned and shipped with the repository: a folder outside it (or a link out of
    // it) could not reach a remote host, and would pin whatever the link points at.
    const real = realpathSync(dataDir);
    const rel = path.relative(realpathSync(root), real);
    if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
      throw new UserError(`${file}: data.dir: ${spec.data.dir} resolves to ${real}, outside the repository; move or copy the data into competitions/${slug}/ and point data.dir there`);
    }
  }
  return { ref: name === 'default' ? slug : `${slug}/${name}`, slug, name, file, competitionDir, dataDir, spec };
}
