// Make variables are how users talk to verbs: `make train experiment=penguins backend=local`.
// GNU make exports command-line variables to the recipe's environment, so verbs read them
// from there (never from a recipe line, where make would splice them into a shell command).
// `key=value` arguments work too, for running a verb without make. A variable the verb does not
// take is refused, whichever way it came: a mistyped `backnd=ssh` would otherwise run on the laptop.
import { z } from 'zod';
import { UserError } from '../ui/errors.js';

export const Flag = z.enum(['', '0', '1', 'yes', 'no', 'true', 'false']).transform((v) => ['1', 'yes', 'true'].includes(v));

export function readVars<S extends z.ZodRawShape>(
  verb: string,
  shape: S,
  argv = process.argv.slice(2),
  env = process.env,
): z.infer<z.ZodObject<S>> {
  const unknown = (key: string) =>
    new UserError(`make ${verb}: unknown variable "${key}"; valid: ${Object.keys(shape).join(', ')}`);
  const mistaken = makeCommandLineNames(env).find((key) => !(key in shape));
  if (mistaken) throw unknown(mistaken);
  const raw: Record<string, string> = {};
  for (const key of Object.keys(shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    if (!(key in shape)) throw unknown(key);
    if (eq > 0 && arg.length > eq + 1) raw[key] = arg.slice(eq + 1);
  }
  const parsed = z.object(shape).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    const got = raw[key] === undefined ? 'missing' : JSON.stringify(raw[key]);
    throw new UserError(`make ${verb}: ${key}: ${got === 'missing' ? 'required' : `${got} is not valid (${issue.message})`}`);
  }
  return parsed.data;
}

/**
 * The lowercase variables given on make's command line. make hands them to the recipe only as
 * environment variables, among all the others, and lists them in MAKEFLAGS after ` -- ` (a
 * space in a value escaped with a backslash). Uppercase names (NODE=) are make's own business,
 * and below the top level (MAKELEVEL > 1) the list is an outer make's, meant for its own verb.
 */
export function makeCommandLineNames(env: NodeJS.ProcessEnv): string[] {
  const flags = ` ${env.MAKEFLAGS ?? ''}`;
  const at = flags.indexOf(' -- ');
  if (env.MAKELEVEL !== '1' || at < 0) return [];
  const names: string[] = [];
  for (const word of flags.slice(at + 4).split(/(?<!\\) /)) {
    const name = /^([a-z][a-z0-9_]*)[:+?!]?=/.exec(word)?.[1];
    if (name) names.push(name);
  }
  return names;
}
