// The code pin: HEAD's commit plus a binary patch of what is uncommitted (staged, unstaged
// and untracked-but-not-ignored), so `git apply` on a checkout of the commit rebuilds the tree.
// With a scope, only changes under its paths count (runs/pin-experiment.ts: an experiment's
// competition folder, the paths its spec declares and the project's own runner and helpers),
// so an edit elsewhere (another competition, the inventory) leaves the pin alone.
// The patch comes from a throwaway copy of the index, leaving the user's staging untouched.
// Side effect worth knowing: `git add` writes blobs for new files into .git/objects.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../proc.js';
import { CommandError, UserError } from '../ui/errors.js';
import { sha256Hex } from './canonical-json.js';

export interface CodePin {
  commit: string;
  /** sha256 of `diff`, or null when the work tree matches the commit. */
  dirty_sha256: string | null;
  diff: Buffer;
}

const FIX = 'git init && git add -A && git commit -m init';
/** The pin scripts' exit when HEAD names no commit; whyNoCommit then says why. */
const NOT_A_COMMIT = 97;
/** Both pin scripts end their first part so: `$commit` a commit's hex name, printed on a line of its own. */
const PRINT_COMMIT = `case $commit in *[!0-9a-f]* | "") exit ${NOT_A_COMMIT} ;; esac
printf '%s\\n' "$commit"`;

/**
 * The whole pin in one process started from here (each start costs this process milliseconds
 * of a verb's start-up budget). First HEAD, and whether anything in the scope differs from it
 * (staged, unstaged or untracked), from one `git status`: porcelain v2 heads its answer with
 * `# branch.oid <commit>` ("(initial)" before a first commit), then gives a line per change.
 * A clean scope ends there, the commit printed alone: one git process instead of four. Else
 * a copy of the index in `$1`, `git add -A` of the scope into that copy, and the patch from
 * the commit to it, after the commit's line. The copy keeps the index's stat data (cp -p), so
 * `git add -A` rehashes only changed files; and its mtime, since git trusts an entry's stat
 * only when the file is older than the index, and a file rewritten (same size) in the second
 * of the last commit must still look racy, as it does to git itself. Neither status (with
 * --no-optional-locks) nor the rest writes the user's index. The temp index and pathspecs
 * arrive as arguments, never inside the script. Explicit options override user config
 * (noprefix, renames, external diff, submodule logs, relative) that would make the patch unfit
 * for `git apply`.
 */
const PIN_SCRIPT = `tmp=$1; shift
answer=$(git --no-optional-locks status --porcelain=v2 --branch --no-ahead-behind --untracked-files=all "$@") || exit
commit= changed=
while IFS= read -r line; do
  case $line in
    "# branch.oid "*) commit=\${line#"# branch.oid "} ;;
    "#"*) ;;
    ?*) changed=1; break ;;
  esac
done <<EOF
$answer
EOF
${PRINT_COMMIT}
[ -n "$changed" ] || exit 0
index=$(git rev-parse --git-path index) || exit
if [ -f "$index" ]; then cp -p "$index" "$tmp" || exit; fi
GIT_INDEX_FILE=$tmp git add -A "$@" || exit
GIT_INDEX_FILE=$tmp exec git diff --cached --binary --no-color --no-ext-diff --no-textconv --no-renames \\
  --no-relative --submodule=short --src-prefix=a/ --dst-prefix=b/ "$commit" "$@"`;

/** HEAD's commit alone, for a scope none of whose paths exists. */
const COMMIT_SCRIPT = `probe=$(git rev-parse --is-inside-work-tree HEAD) || exit ${NOT_A_COMMIT}
{ IFS= read -r inside; IFS= read -r commit; } <<EOF
$probe
EOF
[ "$inside" = true ] || exit ${NOT_A_COMMIT}
${PRINT_COMMIT}`;

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
  if (!existsSync(repoRoot)) throw new UserError(`repository directory not found: ${repoRoot}`);
  const specs = pathspecs(repoRoot, scope);
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-index-'));
  try {
    const argv = specs ? ['sh', '-c', PIN_SCRIPT, 'switchyard-pin', join(tmp, 'index'), ...specs] : ['sh', '-c', COMMIT_SCRIPT, 'switchyard-pin'];
    const { code, stdout, stderr } = await run(argv, { cwd: repoRoot, allowFail: true });
    // No git, no repository, no commit; else git's own complaint (a damaged index, say).
    if (code !== 0) throw (await whyNoCommit(repoRoot)) ?? new CommandError(["the code pin's git", ...(specs ?? [])], code, stderr);
    const eol = stdout.indexOf(0x0a);
    const commit = stdout.subarray(0, eol).toString();
    const diff = stdout.subarray(eol + 1);
    return { commit, dirty_sha256: diff.length ? sha256Hex(diff) : null, diff };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Why `repoRoot` has no commit to pin: no git, no repository, or one without commits; null when it has one. */
async function whyNoCommit(repoRoot: string): Promise<UserError | null> {
  const probe = await run(['git', 'rev-parse', '--is-inside-work-tree'], { cwd: repoRoot, allowFail: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!probe) return new UserError('git is not installed; Switchyard pins code by git commit');
  if (probe.stdout.toString().trim() !== 'true') return new UserError(`${repoRoot} is not a git repository; Switchyard pins code by commit. Fix: ${FIX}`);
  const head = await run(['git', 'rev-parse', '-q', '--verify', 'HEAD^{commit}'], { cwd: repoRoot, allowFail: true });
  return head.code === 0 ? null : new UserError(`${repoRoot}: the git repository has no commits yet. Fix: ${FIX}`);
}
