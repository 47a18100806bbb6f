// Secrets live only in .env (git-ignored). Parsed with Node's own parser; values are handed to
// the child processes that need them and never printed.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { UserError } from '../ui/errors.js';

export function readDotEnv(root: string): Record<string, string> {
  const file = path.join(root, '.env');
  return existsSync(file) ? (parseEnv(readFileSync(file, 'utf8')) as Record<string, string>) : {};
}

/**
 * The values of the secrets a spec declares, from .env; one missing is an error before
 * anything starts, on every backend (`specFile` names the spec in the message).
 */
export function requireSecrets(root: string, specFile: string, declared: readonly string[]): Record<string, string> {
  if (!declared.length) return {};
  const env = readDotEnv(root);
  const missing = declared.filter((k) => env[k] === undefined);
  if (missing.length) {
    const which = missing.length === 1 ? `${missing[0]} is` : `${missing.join(', ')} are`;
    throw new UserError(`${specFile}: secrets: ${which} declared but not in .env; add ${missing[0]}=<value> to .env, or remove it from secrets:`);
  }
  return Object.fromEntries(declared.map((k) => [k, env[k]!]));
}
