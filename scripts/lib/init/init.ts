// `make init`: asks the questions (or takes their answers from variables, or the current values
// with yes=1), renders cluster_fleet_config.ts, proves the result loads with the real config
// loader, and replaces the file only when it changes and the change was agreed to; writes .env
// from .env.example (0600) when there is none. Never replaces anything without asking.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { CONFIG_FILE, loadConfig } from '../config/load-config.js';
import { ConfigSchema } from '../config/config-schema.js';
import { dotEnvFile } from '../secrets/dotenv.js';
import { formatZodIssue } from '../spec/zod-format.js';
import { writeFileAtomically } from '../store/atomic-file.js';
import { UserError } from '../ui/errors.js';
import { QUESTIONS, type RawConfig } from './answers.js';
import { lineDiff } from './line-diff.js';
import { explicitConfig, FRESH_CONFIG, renderConfig } from './render-config.js';

export interface InitIo {
  /** one answer; '' keeps `current` */
  ask(prompt: string, current: string): Promise<string>;
  confirm(question: string): Promise<boolean>;
  say(line: string): void;
}

export interface InitOptions {
  root: string;
  /** answers given as make variables, by question key */
  vars: Record<string, string | undefined>;
  /** take the current answer to every question not given as a variable */
  yes: boolean;
  /** with yes: replace a config that differs without asking */
  force: boolean;
  io: InitIo;
}

async function currentConfig(root: string, say: (l: string) => void): Promise<RawConfig> {
  if (!existsSync(path.join(root, CONFIG_FILE))) return FRESH_CONFIG;
  try {
    return explicitConfig(await loadConfig(root));
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    say(`${CONFIG_FILE} does not load (${err.message}); the questions start from the defaults`);
    return FRESH_CONFIG;
  }
}

async function answer(opts: InitOptions, config: RawConfig): Promise<RawConfig> {
  for (const q of QUESTIONS) {
    if (q.applies && !q.applies.when(config)) {
      // An answer given that cannot apply would be dropped without a word.
      const given = opts.vars[q.key]?.trim();
      if (given && given !== '-') throw new UserError(`make init: ${q.key}=${given} does not apply: ${q.applies.why}`);
      continue;
    }
    const current = q.current(config);
    const given = opts.vars[q.key] ?? (opts.yes ? current : await opts.io.ask(q.prompt, current));
    const a = given.trim() || current;
    if (a !== current) config = q.apply(config, a);
  }
  return config;
}

/** Loads `text` as the config of a scratch copy of the project: the loader's own checks, before anything is replaced. */
async function proveLoads(root: string, text: string): Promise<void> {
  const scratch = path.join(root, '.switchyard', 'cache');
  await writeFileAtomically(path.join(scratch, '.keep'), '');
  const dir = mkdtempSync(path.join(scratch, 'init-'));
  try {
    symlinkSync(path.join(root, 'scripts'), path.join(dir, 'scripts'));
    await writeFileAtomically(path.join(dir, CONFIG_FILE), text);
    await loadConfig(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The new config's text, checked; a mistake in an answer is one line. */
export async function renderChecked(root: string, raw: RawConfig): Promise<string> {
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(`make init: ${formatZodIssue(CONFIG_FILE, parsed.error, ConfigSchema, raw)}`);
  const text = renderConfig(explicitConfig(parsed.data));
  await proveLoads(root, text);
  return text;
}

/** Whether the file was replaced; false when nothing changed or the change was not agreed to (`refused`). */
async function writeConfig(opts: InitOptions, text: string): Promise<'written' | 'same' | 'refused'> {
  const file = path.join(opts.root, CONFIG_FILE);
  const before = existsSync(file) ? readFileSync(file, 'utf8') : null;
  if (before === text) {
    opts.io.say(`${CONFIG_FILE}: nothing to change`);
    return 'same';
  }
  if (before !== null) {
    opts.io.say(`${CONFIG_FILE} would change:\n${lineDiff(before, text).join('\n')}`);
    const agreed = opts.yes ? opts.force : await opts.io.confirm(`replace ${CONFIG_FILE}?`);
    if (!agreed) {
      opts.io.say(`${CONFIG_FILE}: kept as it is${opts.yes ? ' (yes=1 never replaces an edited file; add force=1 to)' : ''}`);
      return 'refused';
    }
  }
  await writeFileAtomically(file, text);
  opts.io.say(`${CONFIG_FILE}: ${before === null ? 'written' : 'replaced'}`);
  return 'written';
}

/** .env from .env.example when there is none; an existing one is only made private (0600). */
async function writeEnv(opts: InitOptions): Promise<void> {
  const file = path.join(opts.root, '.env');
  if (!existsSync(file)) {
    const example = path.join(opts.root, '.env.example');
    // The example holds no values, so the moment before the chmod exposes nothing.
    await writeFileAtomically(file, existsSync(example) ? readFileSync(example) : '');
    await chmod(file, 0o600);
    opts.io.say('.env: written from .env.example (0600); fill in the keys you use');
    return;
  }
  const mode = statSync(file).mode & 0o777;
  if (!(mode & 0o077)) return void opts.io.say('.env: kept');
  const octal = mode.toString(8).padStart(4, '0');
  if (opts.yes || (await opts.io.confirm(`.env is mode ${octal}: others can read the secrets; make it 0600?`))) {
    await chmod(file, 0o600);
    opts.io.say(`.env: mode ${octal} -> 0600`);
  } else opts.io.say(`.env: kept at mode ${octal} (make doctor marks it)`);
}

/** Runs the questions and writes what changed; false when yes=1 left a changed config as it was (answers given, not applied). */
export async function init(opts: InitOptions): Promise<boolean> {
  dotEnvFile(opts.root); // a folder named .env stops the wizard before anything is written
  const raw = await answer(opts, await currentConfig(opts.root, opts.io.say));
  const text = await renderChecked(opts.root, raw);
  const outcome = await writeConfig(opts, text);
  await writeEnv(opts);
  return outcome !== 'refused' || !opts.yes;
}
