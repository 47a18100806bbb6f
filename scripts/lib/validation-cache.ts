// What a validation made of a value, kept in .switchyard/cache: a verb given the same value as
// one before it reads that check's result back, rather than building a zod schema (the config's
// cost ~8 ms of a verb's start) and checking again. The key is the value, as JSON, and the build,
// which carries the schema: an edited file, a value read from the environment that changed, or
// a rebuild each mean a fresh check. A value JSON cannot carry whole (a function, NaN, a key set
// to undefined) is checked every time, and so is every value when running from source.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { writeFileAtomically } from './store/atomic-file.js';

// Set by build.mjs, a new one for each build; undefined when running from source (tsx, tests).
declare const __SWITCHYARD_BUILD__: string | undefined;

/** The build this process runs, or null when it runs from source. */
export const BUILD_ID: string | null = typeof __SWITCHYARD_BUILD__ === 'string' ? __SWITCHYARD_BUILD__ : null;

export interface ValidationCache {
  /** .switchyard/cache */
  dir: string;
  /** what is validated: `config`, `spec` (the files' names start with it) */
  kind: string;
  /** the build whose schema validates; null: validate every time */
  build: string | null;
}

/** `value` as JSON, or null when JSON would not give the same value back. */
function wholeJson(value: unknown): string | null {
  const json = JSON.stringify(value);
  return json !== undefined && isDeepStrictEqual(JSON.parse(json), value) ? json : null;
}

/**
 * What `validate` makes of `raw`: read back from an earlier check by this build, or checked now
 * and kept (a refusal is thrown, and keeps nothing). Kept results of other builds go.
 */
export async function validatedOnce<T>(cache: ValidationCache, raw: unknown, validate: (raw: unknown) => Promise<T>): Promise<T> {
  const json = cache.build === null ? null : wholeJson(raw);
  if (cache.build === null || json === null) return validate(raw);
  const prefix = `${cache.kind}-valid-${cache.build}-`;
  const file = path.join(cache.dir, `${prefix}${createHash('sha256').update(json).digest('hex').slice(0, 32)}.json`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    // not checked yet, or unreadable: check now
  }
  const value = await validate(raw);
  const result = wholeJson(value);
  if (result !== null) await keep(cache, file, prefix, result);
  return value;
}

/**
 * Keeps a result, not fsynced (one a power cut takes back costs one check), and removes those of
 * other builds. A cache that cannot be written (a read-only checkout, a full disk) only costs the
 * next verb the same check.
 */
async function keep(cache: ValidationCache, file: string, prefix: string, result: string): Promise<void> {
  try {
    await writeFileAtomically(file, result, { durable: false });
    for (const old of readdirSync(cache.dir)) {
      if (old.startsWith(`${cache.kind}-valid-`) && !old.startsWith(prefix)) rmSync(path.join(cache.dir, old), { force: true });
    }
  } catch {
    // checked again next time
  }
}
