// The code pin: HEAD's commit plus a binary patch of what is uncommitted (staged, unstaged
// and untracked-but-not-ignored), so `git apply` on a checkout of the commit rebuilds the tree.
// With a scope, only changes under its paths count (runs/pin-experiment.ts: an experiment's
// competition folder, the paths its spec declares and the project's own runner and helpers),
// so an edit elsewhere (another competition, the inventory) leaves the pin alone.
// The patch comes from a throwaway copy of the index, leaving the user's staging untouched;
// marks that hide edits from git (assume-unchanged, skip-worktree) are cleared in that copy. A
// submodule is pinned by its commit, so one with uncommitted changes is refused, as is a nested
// repository that is no submodule: a patch of this repository cannot carry their files.
// Side effect worth knowing: `git add` writes blobs for new files into .git/objects.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
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

/** The pin script's exit when a repository nested in the scope holds what no patch can carry; its answer follows the commit. */
const NESTED = 96;
/** The pin script's exit when the index marks a file in the scope assume-unchanged or skip-worktree. */
const HIDDEN = 95;

/**
 * The whole pin in one process started from here (each start costs this process milliseconds of
 * a verb's start-up budget). `$2` is `-` the first time: a file the index marks assume-unchanged
 * or skip-worktree (`git ls-files -v` tags it lowercase or `S`) hides its edits from git, so the
 * script exits HIDDEN and pinCode runs it again with, in `$2`, a file listing the files to
 * unmark (`+`: this index is known to have none in the scope, no look); they are unmarked in a
 * copy of the index (one mark per update-index: given both, it clears only the first), and all
 * that follows reads that copy. Then HEAD, and whether anything in the scope differs from it
 * (staged, unstaged or untracked), from one `git status`: porcelain v2 heads its answer with
 * `# branch.oid <commit>` ("(initial)" before a first commit), then gives a line per change. A
 * clean scope ends there, the commit printed alone. A submodule with edits or untracked files of
 * its own (`S?M?`, `S??U`), or a repository of its own that is no submodule (an untracked
 * folder, `? path/`), holds changes a patch of this repository cannot carry: the script exits
 * NESTED, printing the answer. Else a copy of the index in `$1`, `git add -A` of the scope into
 * that copy, and the patch from the commit to it, after the commit's line. The copy keeps the
 * index's stat data (cp -p), so `git add -A` rehashes only changed files; and its mtime, since
 * git trusts an entry's stat only when the file is older than the index, and a file rewritten
 * (same size) in the second of the last commit must still look racy, as it does to git itself.
 * Neither status (with --no-optional-locks) nor the rest writes the user's index. The temp index
 * and pathspecs arrive as arguments, never inside the script. Explicit options override user
 * config (noprefix, renames, external diff, submodule logs and ignores, relative) that would
 * make the patch unfit for `git apply` or hide a change.
 */
const PIN_SCRIPT = `tmp=$1 unhide=$2; shift 2
nl='
'
index= marks=
if [ "$unhide" != - ] && [ "$unhide" != + ]; then
  index=$(git rev-parse --git-path index) || exit
  if [ -f "$index" ]; then cp -p "$index" "$tmp" || exit; fi
  GIT_INDEX_FILE=$tmp git update-index --no-assume-unchanged -z --stdin <"$unhide" || exit
  GIT_INDEX_FILE=$tmp git update-index --no-skip-worktree -z --stdin <"$unhide" || exit
  GIT_INDEX_FILE=$tmp; export GIT_INDEX_FILE
elif [ "$unhide" = - ]; then
  { git ls-files -v "$@" | grep -q '^[hsmrckS] '; } & marks=$!
fi
answer=$(git --no-optional-locks status --porcelain=v2 --branch --no-ahead-behind --untracked-files=all --ignore-submodules=none "$@") || exit
if [ -n "$marks" ] && wait "$marks"; then exit ${HIDDEN}; fi
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
case $nl$answer$nl in
  *"$nl"[12]" "??" S"?M* | *"$nl"[12]" "??" S"??U* | *"/$nl"* | *'/"'"$nl"*) printf '%s\\n' "$answer"; exit ${NESTED} ;;
esac
if [ -z "$index" ]; then
  index=$(git rev-parse --git-path index) || exit
  if [ -f "$index" ]; then cp -p "$index" "$tmp" || exit; fi
fi
GIT_INDEX_FILE=$tmp git add -A "$@" || exit
GIT_INDEX_FILE=$tmp exec git diff --cached --binary --no-color --no-ext-diff --no-textconv --no-renames \\
  --no-relative --submodule=short --ignore-submodules=none --src-prefix=a/ --dst-prefix=b/ "$commit" "$@"`;

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

/**
 * Remembers, in `file`, the index in which a scope had no file marked assume-unchanged or
 * skip-worktree, so the next pin of that scope skips the look (a git process, ~2 ms of each
 * make train) while the index is that same file: git writes a new index by renaming one over
 * it, so any change to it, a mark included, comes with a new inode.
 */
class UnmarkedIndex {
  private readonly seen: string | null;
  constructor(
    private readonly file: string | undefined,
    repoRoot: string,
    specs: string[],
  ) {
    const st = file ? lstatSync(join(repoRoot, '.git', 'index'), { bigint: true, throwIfNoEntry: false }) : undefined;
    // No .git folder (a worktree, a submodule's checkout) or no index: looked for each time.
    this.seen = st?.isFile() ? `${st.ino}:${st.size}:${st.mtimeNs}\n${specs.join('\0')}\n` : null;
  }

  /** Whether this index, as it was when the pin began, was seen without marks in the scope. */
  known(): boolean {
    if (this.seen === null) return false;
    try {
      return readFileSync(this.file!, 'utf8') === this.seen;
    } catch {
      return false; // nothing remembered yet
    }
  }

  remember(): void {
    if (this.seen === null) return;
    try {
      mkdirSync(dirname(this.file!), { recursive: true });
      writeFileSync(this.file!, this.seen);
    } catch {
      // a read-only state folder: the next pin looks again
    }
  }
}

/**
 * The code pin of the repository at `repoRoot`, limited to `scope`. `markCache`: a file where
 * the pin remembers an index without hidden marks in the scope (the project's state folder).
 */
export async function pinCode(repoRoot: string, scope?: CodeScope, opts: { markCache?: string } = {}): Promise<CodePin> {
  if (!existsSync(repoRoot)) throw new UserError(`repository directory not found: ${repoRoot}`);
  const specs = pathspecs(repoRoot, scope);
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-index-'));
  try {
    const script = (unhide: string) => ['sh', '-c', PIN_SCRIPT, 'switchyard-pin', join(tmp, 'index'), unhide, ...specs!];
    const unmarked = specs ? new UnmarkedIndex(opts.markCache, repoRoot, specs) : null;
    const knownUnmarked = unmarked?.known() === true;
    const argv = specs ? script(knownUnmarked ? '+' : '-') : ['sh', '-c', COMMIT_SCRIPT, 'switchyard-pin'];
    let { code, stdout, stderr } = await run(argv, { cwd: repoRoot, allowFail: true });
    if (code !== HIDDEN && !knownUnmarked && (code === 0 || code === NESTED)) unmarked?.remember();
    if (code === HIDDEN) {
      writeFileSync(join(tmp, 'unhide'), await hiddenFiles(repoRoot, specs!));
      ({ code, stdout, stderr } = await run(script(join(tmp, 'unhide')), { cwd: repoRoot, allowFail: true }));
    }
    const eol = stdout.indexOf(0x0a);
    if (code === NESTED) throw nestedRepoError(stdout.subarray(eol + 1).toString());
    // No git, no repository, no commit; else git's own complaint (a damaged index, say).
    if (code !== 0) throw (await whyNoCommit(repoRoot)) ?? new CommandError(["the code pin's git", ...(specs ?? [])], code, stderr);
    const commit = stdout.subarray(0, eol).toString();
    const diff = stdout.subarray(eol + 1);
    return { commit, dirty_sha256: diff.length ? sha256Hex(diff) : null, diff };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The files in the scope the index marks assume-unchanged or skip-worktree, NUL-terminated, for
 * the pin's copy of the index to unmark; not a skip-worktree file missing from the work tree,
 * which a sparse checkout leaves out on purpose and which is no deletion.
 */
async function hiddenFiles(repoRoot: string, specs: string[]): Promise<string> {
  const { stdout } = await run(['git', 'ls-files', '-v', '-z', ...specs], { cwd: repoRoot });
  const out: string[] = [];
  for (const entry of stdout.toString().split('\0')) {
    const tag = entry[0] ?? '';
    const file = entry.slice(2);
    const assumed = tag !== tag.toUpperCase();
    const skipped = tag === 'S' || tag === 's';
    if (!file || !(assumed || skipped)) continue;
    if (skipped && !lstatSync(resolve(repoRoot, file), { throwIfNoEntry: false })) continue;
    out.push(file);
  }
  return out.map((f) => `${f}\0`).join('');
}

/** A path as porcelain v2 prints it: C-quoted when it holds unusual bytes. */
function unquote(path: string): string {
  if (!path.startsWith('"')) return path;
  try {
    return JSON.parse(path) as string;
  } catch {
    return path; // an octal escape: shown as git wrote it
  }
}

/**
 * One line for `git status` lines naming what the pin cannot carry: a submodule with edits or
 * untracked files of its own (only its commit is in the patch), or a repository of its own that
 * is no submodule (`git add` would record its commit, or fail without one).
 */
function nestedRepoError(answer: string): UserError {
  const dirty: string[] = [];
  const embedded: string[] = [];
  for (const line of answer.split('\n')) {
    const fields = line.split(' ');
    const sub = fields[2] ?? '';
    if ((fields[0] === '1' || fields[0] === '2') && sub[0] === 'S' && (sub[2] === 'M' || sub[3] === 'U')) {
      const path = fields.slice(fields[0] === '1' ? 8 : 9).join(' ').split('\t')[0]!;
      dirty.push(unquote(path));
    } else if (fields[0] === '?' && /\/"?$/.test(line)) {
      embedded.push(unquote(line.slice(2)).replace(/\/$/, ''));
    }
  }
  const more = (list: string[]) => (list.length > 1 ? ` (so ${list.length === 2 ? 'is' : 'are'} ${list.slice(1).join(', ')})` : '');
  if (dirty.length) {
    return new UserError(`code pin: ${dirty[0]} is a git submodule with uncommitted changes${more(dirty)}; commit them there (and the new submodule commit here), or stash them`);
  }
  const p = embedded[0] ?? '(unknown)';
  return new UserError(
    `code pin: ${p} is a git repository of its own, not a submodule${more(embedded)}, so no pin can see its files; make it one (git submodule add <its url> ${p}) or remove its .git to keep its files in this repository`,
  );
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
