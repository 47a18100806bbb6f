// Experiment specs: competitions/<slug>/experiment.yaml (the default) or
// competitions/<slug>/experiments/<name>.yaml, validated (experiment-schema.ts) into fully
// defaulted values, once per spec and build (validation-cache.ts).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import { BUILD_ID, validatedOnce } from '../validation-cache.js';
import { checkExperimentPaths } from './experiment-paths.js';
import type { CommandSpec, ExperimentSpec } from './experiment-schema.js';
import { parseYaml, strictUtf8Text } from './yaml.js';
import { formatZodIssue } from './zod-format.js';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const NAME_RULE = 'lowercase letters, digits, - and _, starting with a letter or digit';

export { durationSec } from './formats.js';

export type { CommandSpec, ExperimentSpec } from './experiment-schema.js';

/** The command and working folder of `setup`, whichever form the spec gives it in. */
export function setupOf(spec: Pick<ExperimentSpec, 'setup'>): { command: CommandSpec; cwd: string | null } | null {
  const s = spec.setup;
  if (s === undefined) return null;
  return typeof s === 'object' && !Array.isArray(s) ? { command: s.command, cwd: s.cwd ?? null } : { command: s, cwd: null };
}

export interface Experiment {
  /** `<slug>/<name>` as typed, normalised */
  ref: string;
  slug: string;
  name: string;
  /** spec file, relative to the repo root (used in messages) */
  file: string;
  competitionDir: string;
  dataDir: string | null;
  /** the spec, with `smoke:` applied for a smoke run */
  spec: ExperimentSpec;
  /** a smoke run (make train-1): its spec has the `smoke:` overrides applied */
  smoke: boolean;
}

/** The spec of a smoke run: the `smoke:` overrides applied over the spec (pure). */
export function applySmoke(spec: ExperimentSpec): ExperimentSpec {
  const smoke = spec.smoke ?? {};
  const t = smoke.train ?? {};
  return {
    ...spec,
    train: {
      ...spec.train,
      ...(t.command !== undefined ? { command: t.command } : {}),
      ...(t.checkpoint_every_sec !== undefined ? { checkpoint_every_sec: t.checkpoint_every_sec } : {}),
      env: { ...spec.train.env, ...t.env },
    },
    shards: { ...spec.shards, ...(smoke.shards ? { count: smoke.shards.count } : {}) },
    resources: { ...spec.resources, ...(smoke.resources ? { time: smoke.resources.time } : {}) },
  };
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
  const stat = statSync(path.join(root, file));
  if (!stat.isFile()) throw new UserError(`${file}: a folder, not a file; the spec is a YAML file of that name: remove the folder or move it aside`);
  const size = stat.size;
  if (size > MAX_SPEC_BYTES) {
    const human = size >= 1 << 20 ? `${(size / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(size / 1024)} KiB`;
    throw new UserError(`${file}: ${human}, over the ${MAX_SPEC_BYTES / 1024} KiB a spec may be; a spec is configuration: keep data in data.dir and variants in experiments/<name>.yaml`);
  }
  const text = readFileSync(path.join(root, file));
  const cached = path.join(root, '.switchyard', 'cache', `yaml-${createHash('sha256').update(text).digest('hex').slice(0, 32)}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8'));
  const value = await parseYaml(file, strictUtf8Text(file, text));
  await writeFileAtomically(cached, JSON.stringify(value));
  return value;
}

/** The spec `raw` (a parsed experiment.yaml) validated into, or one line naming the field and the fix. */
async function validateSpec(file: string, raw: unknown): Promise<ExperimentSpec> {
  const { ExperimentSchema } = await import('./experiment-schema.js');
  const parsed = ExperimentSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(formatZodIssue(file, parsed.error, ExperimentSchema, raw));
  return parsed.data;
}

/** `smoke`: the experiment of `make train-1`, its spec's `smoke:` applied (refused when it has none). */
export async function loadExperiment(root: string, ref: string | undefined, opts: { smoke?: boolean; build?: string | null } = {}): Promise<Experiment> {
  const { smoke = false, build = BUILD_ID } = opts;
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
  const cache = { dir: path.join(root, '.switchyard', 'cache'), kind: 'spec', build };
  const valid = await validatedOnce(cache, raw, (value) => validateSpec(file, value));
  if (smoke && !valid.smoke) {
    throw new UserError(`${file}: smoke: missing; make train-1 runs the experiment with what it says a short run changes; add e.g. smoke: { train: { env: { EPOCHS: "1" } } }`);
  }
  const spec = smoke ? applySmoke(valid) : valid;
  const cwds = { 'train.cwd': spec.train.cwd, 'predict.cwd': spec.predict?.cwd, 'setup.cwd': setupOf(spec)?.cwd };
  await checkExperimentPaths(root, file, competitionDir, spec.code ?? [], cwds);

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
  return { ref: name === 'default' ? slug : `${slug}/${name}`, slug, name, file, competitionDir, dataDir, spec, smoke };
}
