// Make variables are how users talk to verbs: `make train experiment=penguins backend=local`.
// GNU make exports command-line variables to the recipe's environment, so verbs read them
// from there (never from a recipe line, where make would splice them into a shell command).
// `key=value` arguments work too, for running a verb without make.
import { z } from 'zod';
import { UserError } from '../ui/errors.js';

export const Flag = z.enum(['', '0', '1', 'yes', 'no', 'true', 'false']).transform((v) => ['1', 'yes', 'true'].includes(v));

export function readVars<S extends z.ZodRawShape>(
  verb: string,
  shape: S,
  argv = process.argv.slice(2),
  env = process.env,
): z.infer<z.ZodObject<S>> {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    if (!(key in shape)) {
      throw new UserError(`make ${verb}: unknown variable "${key}"; valid: ${Object.keys(shape).join(', ')}`);
    }
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
