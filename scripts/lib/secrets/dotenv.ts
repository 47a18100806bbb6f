// Secrets live only in .env (git-ignored). Checked line by line, then parsed with Node's own
// parser; values are handed to the child processes that need them and never printed.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { withoutBom } from '../bom.js';
import { UserError } from '../ui/errors.js';

/** A `[export ]KEY=` line, trimmed; the capture is the quote that opens its value, if any. */
const ASSIGNMENT = /^(?:export )?[A-Za-z_][A-Za-z0-9_]*\s*=\s*(["'`]?)/;

/**
 * .env text parsed, every line checked first. Node's parser reads a line without `=` (`HF_TOKEN`,
 * `KEY: value`), or of only spaces, as the start of the next line's key, and a byte-order mark
 * as part of the first key: that key then silently goes missing. The mark is dropped and a line
 * of spaces blanked; any other line that is not `KEY=value` is refused by its number (never its
 * text, which may be a secret). `shown` names the file in the message.
 */
export function parseDotEnv(text: string, shown: string): Record<string, string> {
  const lines = withoutBom(text).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) lines[i] = '';
    if (!line || line.startsWith('#')) continue;
    const m = ASSIGNMENT.exec(line);
    if (!m) throw new UserError(`${shown}:${i + 1}: not a KEY=value line; write it as KEY=value (quote a value with spaces or #), or comment it out with #`);
    const quote = m[1];
    // A quoted value not closed on its line goes on to the line that closes it, as Node reads it.
    if (quote && !line.slice(m[0].length).includes(quote)) {
      const closing = lines.findIndex((l, j) => j > i && l.includes(quote));
      if (closing > 0) i = closing;
    }
  }
  return parseEnv(lines.join('\n')) as Record<string, string>;
}

/**
 * The path of .env, or null when there is none. A folder there is refused: `python -m venv .env`
 * is a common habit, and a folder is neither read as secrets nor made 0600 by make init.
 */
export function dotEnvFile(root: string): string | null {
  const file = path.join(root, '.env');
  const stat = statSync(file, { throwIfNoEntry: false });
  if (stat && !stat.isFile()) {
    throw new UserError('.env: a folder, not the secrets file (a virtualenv named .env?); move it aside (mv .env .venv) and put the KEY=value lines in a file .env');
  }
  return stat ? file : null;
}

export function readDotEnv(root: string): Record<string, string> {
  const file = dotEnvFile(root);
  return file ? parseDotEnv(readFileSync(file, 'utf8'), '.env') : {};
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
