// The inventory as last validated, kept in .switchyard/cache. A verb that finds the value
// cluster_fleet_config.ts exports unchanged since a check by this same build reads that check's
// result, rather than building the config's schema (~8 ms of its start) and checking again. The
// key is the value, as JSON, and the build, which carries the schema: an edit of the config, a
// value read from the environment that changed, or a rebuild each mean a fresh check. A value
// JSON cannot carry whole (a function, NaN, a key set to undefined) is checked every time.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { writeFileAtomically } from '../store/atomic-file.js';
import type { Config } from './config-schema.js';

// Set by build.mjs, a new one for each build; undefined when running from source (tsx, tests).
declare const __SWITCHYARD_BUILD__: string | undefined;

/** The build this process runs, or null when it runs from source, which validates every time. */
export const BUILD_ID: string | null = typeof __SWITCHYARD_BUILD__ === 'string' ? __SWITCHYARD_BUILD__ : null;

const PREFIX = 'config-valid-';

/** `value` as JSON, or null when JSON would not give the same value back. */
function wholeJson(value: unknown): string | null {
  const json = JSON.stringify(value);
  return json !== undefined && isDeepStrictEqual(JSON.parse(json), value) ? json : null;
}

/** Where the result of checking `raw` under `build` is kept, or null when it cannot be. */
function resultFile(cacheDir: string, build: string, raw: unknown): string | null {
  const json = wholeJson(raw);
  if (json === null) return null;
  const key = createHash('sha256').update(build).update('\0').update(json).digest('hex').slice(0, 32);
  return path.join(cacheDir, `${PREFIX}${key}.json`);
}

/** The config `raw` was validated into by this build before, or null. */
export function readValidated(cacheDir: string, build: string, raw: unknown): Config | null {
  const file = resultFile(cacheDir, build, raw);
  if (!file) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Config;
  } catch {
    return null; // not checked yet, or unreadable: check again
  }
}

/**
 * Keeps `config`, what `raw` validated into, for the next verb; the results kept for earlier
 * values go. Not fsynced: a cache a power cut takes back costs one check.
 */
export async function keepValidated(cacheDir: string, build: string, raw: unknown, config: Config): Promise<void> {
  const file = resultFile(cacheDir, build, raw);
  const json = wholeJson(config);
  if (!file || json === null) return;
  await writeFileAtomically(file, json, { durable: false });
  for (const old of readdirSync(cacheDir)) {
    if (old.startsWith(PREFIX) && old !== path.basename(file)) rmSync(path.join(cacheDir, old), { force: true });
  }
}
