// The secrets file a worker's runner reads. On a remote host it is `<root>/secrets.json`
// (0600), written by bootstrap: one JSON object of key → value, so every byte of a value
// (quotes, `$`, backslashes, newlines) arrives as it is in .env. On this machine it is .env.
import { existsSync, readFileSync } from 'node:fs';
import { parseDotEnv } from './dotenv.js';
import { Redactor, secretsToMask } from './redact.js';

export function encodeSecretsFile(values: Record<string, string>): string {
  return JSON.stringify(values, null, 2) + '\n';
}

/** The file's keys and values: JSON for a `.json` file, .env syntax otherwise; none when it is absent. */
export function readSecretsFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const text = readFileSync(file, 'utf8');
  if (!file.endsWith('.json')) return parseDotEnv(text, file);
  const value: unknown = JSON.parse(text);
  const ok = value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
  if (!ok) throw new Error(`${file}: not a JSON object of strings; run make bootstrap again to rewrite it`);
  return value as Record<string, string>;
}

/**
 * What a runner needs from its secrets file (`file`, shown as `shownAs`): the declared
 * secrets for the experiment's environment (each one required), and the redactor for
 * everything it writes, which also masks the credentials found there or in its own environment.
 */
export function workerSecrets(file: string | null, shownAs: string, declared: readonly string[]): { env: Record<string, string>; redactor: Redactor } {
  const all = file ? readSecretsFile(file) : {};
  const missing = declared.filter((k) => all[k] === undefined);
  if (missing.length) {
    throw new Error(`secrets: ${missing.join(', ')} declared by the experiment but not in ${shownAs}; add it to .env (for a remote host, then run make bootstrap again)`);
  }
  const env = Object.fromEntries(declared.map((k) => [k, all[k]!]));
  return { env, redactor: new Redactor(secretsToMask(declared, all, process.env)) };
}
