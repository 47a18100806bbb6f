// Secrets live only in .env (git-ignored). Parsed with Node's own parser; values are handed to
// the child processes that need them and never printed.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';

export function readDotEnv(root: string): Record<string, string> {
  const file = path.join(root, '.env');
  return existsSync(file) ? (parseEnv(readFileSync(file, 'utf8')) as Record<string, string>) : {};
}
