// Kaggle credentials, found where the kaggle CLI looks for them: a KAGGLE_API_TOKEN (sent as a
// Bearer token), KAGGLE_USERNAME and KAGGLE_KEY (HTTP basic auth), or kaggle.json in
// KAGGLE_CONFIG_DIR (default ~/.kaggle). `make kaggle-auth` writes that file from .env.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type KaggleAuth = { kind: 'basic'; username: string; key: string } | { kind: 'token'; token: string };

/** The folder holding kaggle.json: KAGGLE_CONFIG_DIR, else ~/.kaggle, as the CLI has it. */
export function kaggleConfigDir(env: NodeJS.ProcessEnv): string {
  return env.KAGGLE_CONFIG_DIR || path.join(env.HOME || os.homedir(), '.kaggle');
}

/** The file's contents: the CLI's own format. */
export function kaggleJson(username: string, key: string): string {
  return JSON.stringify({ username, key }) + '\n';
}

function fromFile(file: string): KaggleAuth | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { username?: unknown; key?: unknown };
    if (typeof v.username === 'string' && typeof v.key === 'string' && v.username && v.key) return { kind: 'basic', username: v.username, key: v.key };
  } catch {
    // unreadable: as if absent; `make kaggle-auth` rewrites it
  }
  return null;
}

/** The credentials `env` (the process environment with .env over it) leads to, or null. */
export function findKaggleAuth(env: NodeJS.ProcessEnv): KaggleAuth | null {
  if (env.KAGGLE_API_TOKEN) return { kind: 'token', token: env.KAGGLE_API_TOKEN };
  if (env.KAGGLE_USERNAME && env.KAGGLE_KEY) return { kind: 'basic', username: env.KAGGLE_USERNAME, key: env.KAGGLE_KEY };
  return fromFile(path.join(kaggleConfigDir(env), 'kaggle.json'));
}

export function authorizationHeader(auth: KaggleAuth): string {
  return auth.kind === 'token' ? `Bearer ${auth.token}` : `Basic ${Buffer.from(`${auth.username}:${auth.key}`).toString('base64')}`;
}

/** Writes `<dir>/kaggle.json` as 0600 from the first byte (temp file, then rename); returns its path. */
export function writeKaggleJson(dir: string, username: string, key: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'kaggle.json');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, kaggleJson(username, key), { mode: 0o600 });
  chmodSync(tmp, 0o600); // an umask cannot widen it, but a leftover temp file might have other bits
  renameSync(tmp, file);
  return file;
}
