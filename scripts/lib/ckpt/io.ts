// Durable file operations for checkpoints: fsynced writes, atomic renames, un-committing a
// step, and copying a step to another directory (the filesystem store) verifying every byte.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  type CkptManifest,
  MANIFEST_NAME,
  MANIFEST_TMP,
  blobPathProblem,
  serializeManifest,
  sha256Hex,
} from './manifest.js';

/** fsyncs a directory so renames and new entries in it survive a power loss (no-op where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
  }
}

/** Writes `data` to `path` (truncating) and fsyncs the file. */
export async function writeDurable(path: string, data: Buffer | string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** `mkdir -p dir`, then fsyncs its parent so the new entry is durable. */
export async function mkdirDurable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await fsyncDir(dirname(dir));
}

/** Un-commits a step (manifest removed, durably) and then deletes the rest of it. */
export async function removeStep(stepDir: string): Promise<void> {
  try {
    await unlink(join(stepDir, MANIFEST_NAME));
    await fsyncDir(stepDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
  }
  await rm(stepDir, { recursive: true, force: true });
}

/** Writes the manifest last: manifest.json.tmp, fsync, rename (the commit), fsync the directory. */
export async function commitManifest(stepDir: string, manifest: CkptManifest): Promise<string> {
  const text = serializeManifest(manifest);
  const tmp = join(stepDir, MANIFEST_TMP);
  await writeDurable(tmp, text);
  await rename(tmp, join(stepDir, MANIFEST_NAME));
  await fsyncDir(stepDir);
  return text;
}

/**
 * Copies a committed step to `destStepDir` in commit order: any existing step there is
 * un-committed first, each blob is hashed while it is copied and fsynced, the manifest goes
 * last. Throws naming the file when a blob is missing or does not match the manifest.
 * Returns the written manifest's path and SHA-256 (for the ledger's `ckpt.committed`).
 */
export async function copyStep(
  srcStepDir: string,
  destStepDir: string,
  manifest: CkptManifest,
): Promise<{ manifestPath: string; manifestSha256: string }> {
  await removeStep(destStepDir);
  await mkdirDurable(destStepDir);
  const dirs = new Set<string>([destStepDir]);
  for (const file of manifest.files) {
    const problem = blobPathProblem(file.path);
    if (problem) throw new Error(`copyStep: ${file.path}: ${problem}`);
    const dest = join(destStepDir, file.path);
    if (!dirs.has(dirname(dest))) {
      await mkdir(dirname(dest), { recursive: true });
      dirs.add(dirname(dest));
    }
    await copyVerified(join(srcStepDir, file.path), dest, file);
  }
  for (const dir of dirs) await fsyncDir(dir);
  const text = await commitManifest(destStepDir, manifest);
  return { manifestPath: join(destStepDir, MANIFEST_NAME), manifestSha256: sha256Hex(text) };
}

async function copyVerified(src: string, dest: string, want: { path: string; size: number; sha256: string }) {
  const hash = createHash('sha256');
  let size = 0;
  const out = await open(dest, 'w');
  try {
    for await (const chunk of createReadStream(src, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      await out.write(chunk as Buffer);
    }
    await out.sync();
  } catch (err) {
    await out.close();
    await rm(dest, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`copyStep: ${want.path}: missing (${src})`);
    throw err;
  }
  await out.close();
  const sha256 = hash.digest('hex');
  if (size !== want.size || sha256 !== want.sha256) {
    await rm(dest, { force: true });
    const what = size !== want.size ? `size mismatch (manifest ${want.size} bytes, copied ${size})` : `sha256 mismatch (manifest ${want.sha256}, copied ${sha256})`;
    throw new Error(`copyStep: ${want.path}: ${what} while copying from ${src}`);
  }
}
