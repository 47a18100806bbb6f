// The checkpoint manifest (docs/experiment-contract.md): its type, validation, canonical bytes,
// and the streaming SHA-256 every reader and writer uses.
// zod/mini, not zod: the runner shipped to every host validates manifests, and V8 compiles a
// bundle's whole text at each start. Classic zod brought ~400 KB to it (~25 ms a start); mini's
// functions tree-shake to what this schema uses.
import { en } from 'zod/locales';
import * as z from 'zod/mini';

export const CKPT_FORMAT = 'switchyard-ckpt/1';
export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_TMP = 'manifest.json.tmp';
/** A step directory's name: decimal, no padding (what Python's str(step) writes). */
export const STEP_NAME_RE = /^(0|[1-9][0-9]*)$/;

export interface CkptFileEntry {
  path: string;
  size: number;
  sha256: string;
}

export interface CkptManifest {
  format: 'switchyard-ckpt/1';
  step: number;
  run_id: string;
  attempt: number;
  created_at: string;
  files: CkptFileEntry[];
}

/** Why `path` cannot name a blob in a step directory, or null when it can. */
export function blobPathProblem(path: string): string | null {
  if (path === '') return 'empty path';
  if (path.startsWith('/')) return 'absolute path';
  if (path.includes('\\') || path.includes('\0')) return 'backslash or NUL in path';
  if (path.split('/').some((p) => p === '' || p === '.' || p === '..')) return 'empty, "." or ".." segment';
  if (path === MANIFEST_NAME || path === MANIFEST_TMP) return `${path} is reserved`;
  return null;
}

z.config(en()); // mini sets no messages of its own: the English ones classic zod uses

const nonNegInt = z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER));
const fileEntry = z.object({
  path: z.string().check(
    z.superRefine((p, ctx) => {
      const problem = blobPathProblem(p);
      if (problem) ctx.addIssue({ code: 'custom', message: `${problem}: ${JSON.stringify(p)}` });
    }),
  ),
  size: nonNegInt,
  sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits')),
});
const manifestSchema = z.object({
  format: z.literal(CKPT_FORMAT),
  step: nonNegInt,
  // The Python helper writes "" and 0 when SWITCHYARD_RUN_ID / SWITCHYARD_ATTEMPT are unset.
  run_id: z.string(),
  attempt: nonNegInt,
  created_at: z.string().check(z.minLength(1)),
  files: z.array(fileEntry).check(
    z.superRefine((files, ctx) => {
      const seen = new Set<string>();
      for (const f of files) {
        if (seen.has(f.path)) ctx.addIssue({ code: 'custom', message: `duplicate path ${JSON.stringify(f.path)}` });
        seen.add(f.path);
      }
    }),
  ),
});

/** A manifest that failed to parse; `detail` is the problem without the location. */
export class ManifestError extends Error {
  constructor(
    readonly where: string,
    readonly detail: string,
  ) {
    super(`${where}: ${detail}`);
    this.name = 'ManifestError';
  }
}

/** Parses and validates manifest text; throws a ManifestError naming `where` and the field. */
export function parseManifest(text: string, where: string): CkptManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(where, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || '(root)';
    throw new ManifestError(where, `${field}: ${issue?.message ?? 'invalid manifest'}`);
  }
  const m = parsed.data;
  return { format: m.format, step: m.step, run_id: m.run_id, attempt: m.attempt, created_at: m.created_at, files: m.files };
}

/** Byte-wise (code point) order, the order Python's sorted() gives. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The manifest's bytes: keys in contract order, files sorted, same text as Python's json.dumps(indent=2). */
export function serializeManifest(m: CkptManifest): string {
  const files = [...m.files]
    .sort((a, b) => comparePaths(a.path, b.path))
    .map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 }));
  const ordered = { format: m.format, step: m.step, run_id: m.run_id, attempt: m.attempt, created_at: m.created_at, files };
  const text = JSON.stringify(ordered, null, 2).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `${text}\n`;
}

/** Whether two saves hold the same files, byte for byte: their step, attempt and time aside. */
export function sameFiles(a: CkptManifest, b: CkptManifest): boolean {
  const files = (m: CkptManifest) => serializeManifest({ ...m, step: 0, attempt: 0, run_id: '', created_at: '' });
  return files(a) === files(b);
}

export { hashFile, sha256Hex } from '../hash.js';
