// Writing a local file so that readers see the old file or the whole new one, never a part:
// write beside it under a temp name, then rename; a failure removes the temp file.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export async function writeAtomically<T>(dest: string, write: (tmp: string) => Promise<T>): Promise<T> {
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    const result = await write(tmp);
    await rename(tmp, dest);
    return result;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
