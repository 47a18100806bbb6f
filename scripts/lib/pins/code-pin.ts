// The code pin: HEAD's commit plus a binary patch of what is uncommitted (staged, unstaged
// and untracked-but-not-ignored), so `git apply` on a checkout of the commit rebuilds the tree.
// With a scope, only changes under its paths count (runs/pin-experiment.ts: an experiment's
// competition folder, the paths its spec declares and the project's own runner and helpers),
// so an edit elsewhere (another competition, the inventory) leaves the pin alone.
// The patch comes from a throwaway copy of the index, leaving the user's staging untouched.
// Side effect worth knowing: `git add` writes blobs for new files into .git/objects.
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../proc.js';
import { UserError } from '../ui/errors.js';
import { sha256Hex } from './canonical-json.js';

export interface CodePin {
  commit: string;
  /** sha256 of `diff`, or null when the work tree matches the commit. */
  dirty_sha256: string | null;
  diff: Buffer;
}

const FIX = 'git init && git add -A && git commit -m init';

/**
 * `git add -A` of the scope into the temp index, then the patch from the commit to it, in one
 * process started from here (each start costs this process milliseconds). The commit and the
 * pathspecs arrive as arguments, never inside the script. Explicit options override user
 * config (noprefix, renames, external diff, submodule logs, relative) that would make the
 * patch unfit for `git apply`.
 */
const ADD_THEN_DIFF =
  'commit=$1; shift; git add -A "$@" && exec git diff --cached --binary --no-color --no-ext-diff --no-textconv --no-renames ' +
  '--no-relative --submodule=short --src-prefix=a/ --dst-prefix=b/ "$commit" "$@"';

/** The project's own code every run executes: the runner, and the helpers experiments import. */
export const PROJECT_CODE = ['scripts'];

export interface CodeScope {
  /** repo-relative folders or files whose uncommitted changes count; missing ones are skipped */
  paths: string[];
  /** repo-relative paths that do not count, even below those (the data folder, the inventory) */
  exclude: string[];
}

/** git pathspecs for a scope, `--` first; null when none of its paths exists. */
function pathspecs(repoRoot: string, scope: CodeScope | undefined): string[] | null {
  const clean = (p: string) => p.replace(/^(\.\/)+/, '').replace(/\/+$/, '') || '.';
  if (!scope) return ['--'];
  const paths = [...new Set(scope.paths.map(clean))].filter((p) => existsSync(resolve(repoRoot, p)));
  if (!paths.length) return null;
  return ['--', ...paths.map((p) => `:(top,literal)${p}`), ...scope.exclude.map((p) => `:(top,exclude,literal)${clean(p)}`)];
}

export async function pinCode(repoRoot: string, scope?: CodeScope): Promise<CodePin> {
  const git = (args: string[], env?: NodeJS.ProcessEnv) =>
    run(['git', ...args], { cwd: repoRoot, allowFail: true, env: env ?? process.env });

  if (!existsSync(repoRoot)) throw new UserError(`repository directory not found: ${repoRoot}`);
  // One git start for the common case (each costs milliseconds of a verb's start-up budget);
  // the slower step-by-step questions only run to explain a failure.
  const probe = await git(['rev-parse', '--is-inside-work-tree', '--git-path', 'index', 'HEAD']).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new UserError('git is not installed; Switchyard pins code by git commit');
    throw err;
  });
  const [inside, indexRel, commit = ''] = probe.stdout.toString().trim().split('\n');
  if (probe.code !== 0 || inside !== 'true' || !/^[0-9a-f]{40,64}$/.test(commit)) {
    const isRepo = (await git(['rev-parse', '--is-inside-work-tree'])).stdout.toString().trim() === 'true';
    if (!isRepo) throw new UserError(`${repoRoot} is not a git repository; Switchyard pins code by commit. Fix: ${FIX}`);
    throw new UserError(`${repoRoot}: the git repository has no commits yet. Fix: ${FIX}`);
  }
  const specs = pathspecs(repoRoot, scope);
  if (!specs) return { commit, dirty_sha256: null, diff: Buffer.alloc(0) };
  const indexPath = resolve(repoRoot, indexRel!);
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-index-'));
  try {
    const tmpIndex = join(tmp, 'index');
    // Copying keeps the index's stat data, so `git add -A` rehashes only changed files. The
    // copy keeps the index's mtime too: git trusts an entry's stat only when the file is older
    // than the index, and a file rewritten (same size) in the second of the last commit must
    // still look racy, as it does to git itself.
    const indexStat = statSync(indexPath, { throwIfNoEntry: false });
    if (indexStat) {
      copyFileSync(indexPath, tmpIndex);
      utimesSync(tmpIndex, indexStat.atime, indexStat.mtime);
    }
    const env = { ...process.env, GIT_INDEX_FILE: tmpIndex };
    const { stdout: diff } = await run(['sh', '-c', ADD_THEN_DIFF, 'switchyard-pin', commit, ...specs], { cwd: repoRoot, env });
    return { commit, dirty_sha256: diff.length ? sha256Hex(diff) : null, diff };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
