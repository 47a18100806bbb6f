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
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
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
 * that follows reads that copy. The look lists the index's entries with their modes in `$1.ls`,
 * which also names the scope's committed symlinks (linksLeavingScope). Then HEAD, and whether
 * anything in the scope differs from it (staged, unstaged or untracked), from one `git status`:
 * porcelain v2 heads its answer with `# branch.oid <commit>` ("(initial)" before a first
 * commit), then gives a line per change. A clean scope ends there, the commit printed alone. A
 * submodule with edits or untracked files of its own (`S?M?`, `S??U`), or a repository of its
 * own that is no submodule (an untracked folder, `? path/`), holds changes a patch of this repository cannot carry: the script exits
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
  git ls-files -v -s "$@" >"$tmp.ls" & marks=$!
fi
answer=$(git --no-optional-locks status --porcelain=v2 --branch --no-ahead-behind --untracked-files=all --ignore-submodules=none "$@") || exit
if [ -n "$marks" ] && wait "$marks" && grep -q '^[hsmrckS] ' "$tmp.ls"; then exit ${HIDDEN}; fi
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
 * skip-worktree, and the symlinks it holds there, so the next pin of that scope skips the look
 * (a git process, ~2 ms of each make train) while the index is that same file: git writes a new
 * index by renaming one over it, so any change to it, a mark included, comes with a new inode.
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

  /** The scope's symlinks in this index, as it was when the pin began, if it was seen without marks in the scope; else null. */
  known(): string[] | null {
    if (this.seen === null) return null;
    try {
      const text = readFileSync(this.file!, 'utf8');
      return text.startsWith(this.seen) ? (JSON.parse(text.slice(this.seen.length)) as string[]) : null;
    } catch {
      return null; // nothing remembered yet, or remembered without its symlinks
    }
  }

  remember(links: string[]): void {
    if (this.seen === null) return;
    try {
      mkdirSync(dirname(this.file!), { recursive: true });
      writeFileSync(this.file!, this.seen + JSON.stringify(links));
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
    const knownLinks = unmarked?.known() ?? null;
    const argv = specs ? script(knownLinks ? '+' : '-') : ['sh', '-c', COMMIT_SCRIPT, 'switchyard-pin'];
    let { code, stdout, stderr } = await run(argv, { cwd: repoRoot, allowFail: true });
    const committedLinks = knownLinks ?? (specs ? symlinksListed(join(tmp, 'index.ls')) : []);
    if (code !== HIDDEN && !knownLinks && (code === 0 || code === NESTED)) unmarked?.remember(committedLinks);
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
    const widen = linksLeavingScope(repoRoot, scope, [...committedLinks, ...symlinksInPatch(diff)]);
    // Pinned again with the links' targets in the scope (its own memo: the scope differs).
    const markCache = opts.markCache && `${opts.markCache}-widened`;
    if (widen.length) return pinCode(repoRoot, { paths: [...scope!.paths, ...widen], exclude: scope!.exclude }, { markCache });
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

const C_ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };

/** A path as git prints it, read as latin1 (a char a byte): C-quoted when it holds unusual bytes (`"caf\303\251"`). */
function gitPath(printed: string): string {
  if (!printed.startsWith('"')) return Buffer.from(printed, 'latin1').toString('utf8');
  const bytes: number[] = [];
  for (let i = 1; i < printed.length - 1; i++) {
    const octal = printed.slice(i + 1, i + 4);
    if (printed[i] !== '\\') {
      bytes.push(printed.charCodeAt(i));
    } else if (/^[0-7]{3}$/.test(octal)) {
      bytes.push(parseInt(octal, 8));
      i += 3;
    } else {
      i++;
      bytes.push(C_ESCAPES[printed[i]!] ?? printed.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The symlinks (mode 120000) of a `git ls-files -v -s` listing; none when there is no listing. */
function symlinksListed(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) if (line.startsWith(' 120000 ', 1)) out.push(gitPath(line.slice(line.indexOf('\t') + 1)));
  return out;
}

/** The symlinks the patch adds or changes (its headers name mode 120000): new, untracked ones are in no index. */
function symlinksInPatch(diff: Buffer): string[] {
  if (!diff.includes(' 120000\n')) return [];
  const out: string[] = [];
  let path = '';
  for (const line of diff.toString('latin1').split('\n')) {
    if (line.startsWith('diff --git ')) {
      const pair = line.slice('diff --git '.length);
      // Renames are off, so both sides name one path: `a/P b/P`, or C-quoted `"a/P" "b/P"`.
      path = gitPath(pair.startsWith('"') ? pair.slice(0, pair.indexOf('" "') + 1) : pair.slice(0, (pair.length - 1) / 2)).slice(2);
    } else if (path && /^(new file mode|new mode|index \S+) 120000$/.test(line)) {
      out.push(path);
      path = '';
    }
  }
  return out;
}

/**
 * Where the scope's symlinks lead: git pins a link as its text, not what it points to, so a
 * link out of the scope would leave edits there out of the pin. Returns the repository paths
 * outside the scope that links lead to, for the pin to cover too; a link out of the repository
 * cannot be pinned at all and is refused. A dangling link, or one into an excluded path (the
 * data folder, which the data pin covers), is left as it is.
 */
function linksLeavingScope(repoRoot: string, scope: CodeScope | undefined, links: string[]): string[] {
  if (!links.length) return [];
  const top = realpathSync(repoRoot);
  const under = (rel: string, p: string) => p === '.' || rel === p || rel.startsWith(`${p}/`);
  const clean = (p: string) => p.replace(/^(\.\/)+/, '').replace(/\/+$/, '') || '.';
  const paths = (scope?.paths ?? ['.']).map(clean);
  const exclude = (scope?.exclude ?? []).map(clean);
  const widen = new Set<string>();
  for (const link of links) {
    let target: string;
    try {
      target = realpathSync(resolve(repoRoot, link));
    } catch {
      continue; // dangling: pinned as its text, and nothing to read through it
    }
    const rel = relative(top, target).split(sep).join('/');
    if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
      const field = paths.includes(link) ? ' (the competition folder or a code: path of the spec)' : '';
      throw new UserError(
        `code pin: ${link}${field} is a symlink to ${target}, outside the repository, so no pin can see what it reads there; move or copy that into the repository (or add it as a git submodule) and point the link there`,
      );
    }
    if (!paths.some((p) => under(rel, p)) && !exclude.some((p) => under(rel, p))) widen.add(rel || '.');
  }
  return [...widen];
}

/** A path as porcelain v2 prints it: C-quoted when it holds unusual bytes. */
function unquote(path: string): string {
  return path.startsWith('"') ? gitPath(path) : path; // quoted, it is ASCII however it was decoded
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
