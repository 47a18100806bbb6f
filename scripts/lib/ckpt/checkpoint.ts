// The TypeScript side of the checkpoint protocol (docs/experiment-contract.md), shared by
// experiments and by the runner that syncs steps to a store. A step directory counts only when
// its manifest.json exists and every listed file matches its size and SHA-256; anything else is
// skipped and reported, never trusted and never deleted silently.
import { lstat, mkdir, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDir, mkdirDurable, removeStep, writeDurable } from './io.js';
import {
  CKPT_FORMAT,
  type CkptManifest,
  MANIFEST_NAME,
  MANIFEST_TMP,
  ManifestError,
  STEP_NAME_RE,
  blobPathProblem,
  comparePaths,
  hashFile,
  parseManifest,
  serializeManifest,
  sha256Hex,
} from './manifest.js';

export * from './manifest.js';
export { copyStep, removeStep } from './io.js';

export interface CommittedStep {
  step: number;
  dir: string;
  manifest: CkptManifest;
}
export interface SkippedStep {
  step: number;
  dir: string;
  reason: string;
}
export type VerifyResult = { ok: true; manifest: CkptManifest } | { ok: false; reason: string };

export interface SaveMeta {
  /** Default: $SWITCHYARD_RUN_ID, else "" (as the Python helper). */
  run_id?: string;
  /** Default: $SWITCHYARD_ATTEMPT, else 0 (as the Python helper). */
  attempt?: number;
  /** Committed steps to keep after saving. Default: $SWITCHYARD_CKPT_KEEP, else 3. */
  keep?: number;
}

/** One step of a save, in order. Exported so fault tests can stop a save between (or inside) steps. */
export type SaveOp =
  | { kind: 'uncommit'; dir: string } // remove manifest.json of an existing step, fsync the dir
  | { kind: 'rmrf'; path: string }
  | { kind: 'mkdir'; dir: string } // mkdir -p, fsync the parent
  | { kind: 'write'; path: string; data: Buffer } // write, fsync the file
  | { kind: 'fsyncDir'; dir: string }
  | { kind: 'rename'; from: string; to: string }; // rename, fsync the target's dir: the commit

/** The exact write sequence of saveCheckpoint: blobs, then manifest.json.tmp, then the rename. */
export function planSave(
  ckptDir: string,
  step: number,
  files: Record<string, Buffer | string>,
  meta: Pick<SaveMeta, 'run_id' | 'attempt'> = {},
): { stepDir: string; ops: SaveOp[]; manifest: CkptManifest } {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`saveCheckpoint: step must be a non-negative integer, got ${step}`);
  const stepDir = join(ckptDir, String(step));
  const ops: SaveOp[] = [
    { kind: 'uncommit', dir: stepDir },
    { kind: 'rmrf', path: stepDir },
    { kind: 'mkdir', dir: stepDir },
  ];
  const dirs = new Set<string>([stepDir]);
  const entries: CkptManifest['files'] = [];
  for (const path of Object.keys(files).sort(comparePaths)) {
    const problem = blobPathProblem(path);
    if (problem) throw new Error(`saveCheckpoint: invalid file path ${JSON.stringify(path)}: ${problem}`);
    const value = files[path]!;
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const target = join(stepDir, path);
    if (!dirs.has(dirname(target))) {
      ops.push({ kind: 'mkdir', dir: dirname(target) });
      dirs.add(dirname(target));
    }
    ops.push({ kind: 'write', path: target, data });
    entries.push({ path, size: data.length, sha256: sha256Hex(data) });
  }
  for (const dir of dirs) ops.push({ kind: 'fsyncDir', dir });
  const manifest: CkptManifest = {
    format: CKPT_FORMAT,
    step,
    run_id: meta.run_id ?? process.env.SWITCHYARD_RUN_ID ?? '',
    attempt: meta.attempt ?? (Number(process.env.SWITCHYARD_ATTEMPT) || 0),
    created_at: new Date().toISOString(),
    files: entries,
  };
  const tmp = join(stepDir, MANIFEST_TMP);
  ops.push({ kind: 'write', path: tmp, data: Buffer.from(serializeManifest(manifest)) });
  ops.push({ kind: 'rename', from: tmp, to: join(stepDir, MANIFEST_NAME) });
  return { stepDir, ops, manifest };
}

export async function applySaveOp(op: SaveOp): Promise<void> {
  switch (op.kind) {
    case 'uncommit':
      try {
        await unlink(join(op.dir, MANIFEST_NAME));
        await fsyncDir(op.dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      }
      return;
    case 'rmrf':
      return rm(op.path, { recursive: true, force: true });
    case 'mkdir':
      return mkdirDurable(op.dir);
    case 'write':
      return writeDurable(op.path, op.data);
    case 'fsyncDir':
      return fsyncDir(op.dir);
    case 'rename':
      await rename(op.from, op.to);
      return fsyncDir(dirname(op.to));
  }
}

/** SWITCHYARD_CKPT_KEEP, or 3. */
export function keepFromEnv(): number {
  const raw = process.env.SWITCHYARD_CKPT_KEEP;
  if (raw === undefined || raw === '') return 3;
  if (!/^[1-9][0-9]*$/.test(raw)) throw new Error(`SWITCHYARD_CKPT_KEEP must be a positive integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function checkKeep(keep: number): number {
  if (!Number.isSafeInteger(keep) || keep < 1) throw new Error(`checkpoint keep must be a positive integer, got ${keep}`);
  return keep;
}

/**
 * Commits `files` as step `step` under `ckptDir` and prunes to `keep` committed steps. An
 * existing directory for the step is un-committed (manifest first) and emptied before anything
 * is written. Returns the step directory.
 */
export async function saveCheckpoint(
  ckptDir: string,
  step: number,
  files: Record<string, Buffer | string>,
  meta: SaveMeta = {},
): Promise<string> {
  const keep = checkKeep(meta.keep ?? keepFromEnv());
  await mkdir(ckptDir, { recursive: true });
  const { stepDir, ops } = planSave(ckptDir, step, files, meta);
  for (const op of ops) await applySaveOp(op);
  await pruneCheckpoints(ckptDir, keep);
  return stepDir;
}

/** Checks a step directory against its manifest; the reason names the bad file. */
export async function verifyStep(stepDir: string): Promise<VerifyResult> {
  let text: string;
  try {
    text = await readFile(join(stepDir, MANIFEST_NAME), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return { ok: false, reason: `manifest.json unreadable: ${(err as Error).message}` };
    const tmp = await exists(join(stepDir, MANIFEST_TMP));
    return { ok: false, reason: `no manifest.json (${tmp ? 'manifest.json.tmp present: ' : ''}the save never committed)` };
  }
  let manifest: CkptManifest;
  try {
    manifest = parseManifest(text, MANIFEST_NAME);
  } catch (err) {
    if (err instanceof ManifestError) return { ok: false, reason: `manifest.json unparsable: ${err.detail}` };
    throw err;
  }
  const name = basename(stepDir);
  if (STEP_NAME_RE.test(name) && Number(name) !== manifest.step) {
    return { ok: false, reason: `step mismatch: directory ${name} holds a manifest for step ${manifest.step}` };
  }
  for (const file of manifest.files) {
    const path = join(stepDir, file.path);
    const st = await lstat(path).catch(() => null);
    if (!st) return { ok: false, reason: `${file.path}: missing` };
    if (!st.isFile()) return { ok: false, reason: `${file.path}: not a regular file` };
    if (st.size !== file.size) return { ok: false, reason: sizeReason(file.path, file.size, st.size) };
    const got = await hashFile(path);
    if (got.size !== file.size) return { ok: false, reason: sizeReason(file.path, file.size, got.size) };
    if (got.sha256 !== file.sha256) {
      return { ok: false, reason: `${file.path}: sha256 mismatch (manifest ${file.sha256.slice(0, 12)}…, file ${got.sha256.slice(0, 12)}…)` };
    }
  }
  return { ok: true, manifest };
}

function sizeReason(path: string, want: number, got: number): string {
  return `${path}: size mismatch (manifest ${want} bytes, file ${got} bytes)`;
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => null)) !== null;
}

/** Step directories under ckptDir (names that are decimal step numbers), ascending. */
export async function listStepDirs(ckptDir: string): Promise<{ step: number; dir: string }[]> {
  let entries;
  try {
    entries = await readdir(ckptDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries
    .filter((e) => e.isDirectory() && STEP_NAME_RE.test(e.name) && Number.isSafeInteger(Number(e.name)))
    .map((e) => ({ step: Number(e.name), dir: join(ckptDir, e.name) }))
    .sort((a, b) => a.step - b.step);
}

/** Verifies every step directory: committed ones ascending, and the skipped ones with why. */
export async function scanCheckpoints(ckptDir: string): Promise<{ committed: CommittedStep[]; skipped: SkippedStep[] }> {
  const committed: CommittedStep[] = [];
  const skipped: SkippedStep[] = [];
  for (const { step, dir } of await listStepDirs(ckptDir)) {
    const v = await verifyStep(dir);
    if (v.ok) committed.push({ step, dir, manifest: v.manifest });
    else skipped.push({ step, dir, reason: v.reason });
  }
  return { committed, skipped };
}

/**
 * The newest committed step, or null. Steps are verified newest first; each newer step that
 * fails is reported as `skipping step N: reason` (default: on stderr).
 */
export async function latestCheckpoint(
  ckptDir: string,
  opts: { report?: (line: string) => void } = {},
): Promise<CommittedStep | null> {
  const report = opts.report ?? ((line: string) => process.stderr.write(`switchyard: ${line}\n`));
  for (const { step, dir } of (await listStepDirs(ckptDir)).reverse()) {
    const v = await verifyStep(dir);
    if (v.ok) return { step, dir, manifest: v.manifest };
    report(`skipping step ${step}: ${v.reason}`);
  }
  return null;
}

/**
 * Deletes committed steps older than the newest `keep` committed ones (manifest first, then the
 * rest) and returns their step numbers. Uncommitted or corrupt directories are left in place:
 * scanCheckpoints keeps reporting them.
 */
export async function pruneCheckpoints(ckptDir: string, keep: number): Promise<number[]> {
  checkKeep(keep);
  const { committed } = await scanCheckpoints(ckptDir);
  const old = committed.slice(0, Math.max(0, committed.length - keep));
  for (const { dir } of old) await removeStep(dir);
  return old.map((c) => c.step);
}
