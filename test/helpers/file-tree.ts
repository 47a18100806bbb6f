// Scratch folders and small file trees for the tests that pin and hash files.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** Hands out fresh empty folders under one scratch folder, removed after the test file's tests. */
export function scratchFolders(prefix: string): () => string {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  let n = 0;
  return () => {
    const d = join(scratch, `t${n++}`);
    mkdirSync(d, { recursive: true });
    return d;
  };
}

/** Writes a tree of files: { 'a.txt': 'hello', 'sub/b.txt': 'x' }. */
export function writeTree(root: string, files: Record<string, string | Buffer>): string {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  return root;
}
