// Checks of a parsed spec against the work tree: the folders it names must be there, so a
// typo is one line before a run exists instead of a failed attempt.
import { statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../ui/errors.js';

/** `code`: the spec's code paths (relative to root); `cwds`: each working folder by field name. */
export function checkExperimentPaths(root: string, file: string, competitionDir: string, code: string[], cwds: Record<string, string | null | undefined>): void {
  for (const [i, p] of code.entries()) {
    if (!statSync(path.resolve(root, p), { throwIfNoEntry: false })) {
      throw new UserError(`${file}: code.${i}: ${p} does not exist in the repository (paths under code are relative to its root); create it or fix the path`);
    }
  }
  for (const [field, cwd] of Object.entries(cwds)) {
    // $data is the staged view, made per attempt; its folders are the pinned files' own.
    if (!cwd || cwd.startsWith('$data')) continue;
    const dir = path.resolve(competitionDir, cwd);
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new UserError(`${file}: ${field}: ${path.relative(root, dir)} is not a folder; create it or fix the path (relative to the competition folder, or $data)`);
    }
  }
}
