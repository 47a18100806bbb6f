// Checks of a parsed spec against the work tree: the folders it names must be there, so a
// typo is one line before a run exists instead of a failed attempt; and the code paths it
// declares must be ones git sees, since the code pin is git's view of them.
import { statSync } from 'node:fs';
import path from 'node:path';
import { run } from '../proc.js';
import { UserError } from '../ui/errors.js';

/** `code`: the spec's code paths (relative to root); `cwds`: each working folder by field name. */
export async function checkExperimentPaths(root: string, file: string, competitionDir: string, code: string[], cwds: Record<string, string | null | undefined>): Promise<void> {
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
  const ignored = await ignoredByGit(root, code);
  const i = ignored.findIndex((rule) => rule !== null);
  if (i >= 0) throw new UserError(`${file}: code.${i}: ${code[i]} is ignored by git (${ignored[i]}), so no pin could see it; commit it (git add -f) or un-ignore it`);
}

/**
 * For each path, the ignore rule git applies to it (`.gitignore:3: configs/`), or null: one
 * `git check-ignore` for all of them. A tracked file is never ignored. Without git or a
 * repository nothing is said here: the code pin names that itself.
 */
async function ignoredByGit(root: string, paths: string[]): Promise<(string | null)[]> {
  if (!paths.length) return [];
  const input = paths.map((p) => `${p}\0`).join('');
  const answer = await run(['git', 'check-ignore', '--verbose', '--non-matching', '--stdin', '-z'], { cwd: root, input, allowFail: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  // 0: some are ignored, 1: none is; anything else (no repository, a path outside it) is the pin's to say.
  if (answer?.code !== 0) return paths.map(() => null);
  // Four fields per path, in order: source, line number, pattern (all empty when none matched), path.
  const fields = answer.stdout.toString().split('\0');
  return paths.map((_, i) => {
    const [source, line, pattern] = fields.slice(4 * i, 4 * i + 3);
    // A pattern with `!` un-ignores: the path is not ignored.
    return source && pattern && !pattern.startsWith('!') ? `${source}:${line}: ${pattern}` : null;
  });
}
