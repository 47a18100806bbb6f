// The fixed POSIX sh scripts the SLURM backend runs on a login node (`sh -c <script> sh <args>`,
// over the pooled ssh connection or on this machine). Values arrive only as positional
// parameters, never as script text; each script is one round trip.
import { posix } from 'node:path';
import { ATTEMPT_FILES_SH, LIVE_READ_SH } from '../remote/scripts.js';
import { STOP_REQUEST } from '../runner/attempt-spec.js';

/** The sacct columns a poll reads (job-states.ts parses them in this order). */
export const SACCT_FIELDS = 'JobID,State,ExitCode,Restarts,Elapsed,NodeList,Reason';

/**
 * One poll of a cluster: $1 a marker, $2 `auto` (sacct, falling back to squeue where it fails)
 * or `squeue` (accounting is off here), $3 the job ids, comma-separated, $4 a folder; then per
 * attempt its folder relative to $4 (see SLURM_SUBMIT_SCRIPT for why), the event lines already
 * read and its job's id. Prints what SLURM says (`sacct` or `squeue` on the first line;
 * `sacct-error <its first line>` before a fallback), the marker, then per attempt `gone`
 * (SLURM, not a session, says whether it lives) and its files, as the ssh poll does (five
 * empty sections, at no cost, for a job still queued: its runner has not made its folder yet).
 * A runner runs on a node whose /proc the login node cannot see: its live view's count of
 * events is trusted while sacct, asked first, says its job is RUNNING (a job that has ended has
 * its events read from their file, whatever the view says).
 */
export const SLURM_POLL_SCRIPT = `m=$1 mode=$2 ids=$3 base=$4; shift 4
nl='
'
running=
if [ "$mode" = auto ] && out=$(SLURM_BITSTR_LEN=0 sacct -X -D -P -n -o ${SACCT_FIELDS} -j "$ids" 2>&1); then
  printf 'sacct\\n%s\\n' "$out"
  running=$nl$out
else
  if [ "$mode" = auto ]; then printf 'sacct-error %s\\n' "$(printf '%s\\n' "$out" | head -n 1)"; fi
  printf 'squeue\\n'; squeue --json --states=all --me 2>&1
fi
printf %s "$m"
while [ $# -ge 3 ]; do
d=$base/$1 from=$2 job=$3; shift 3
printf gone; printf %s "$m"
if [ ! -d "$d" ]; then printf %s%s%s%s%s "$m" "$m" "$m" "$m" "$m"; continue; fi
${LIVE_READ_SH}
fresh=
case $running in *"$nl$job|RUNNING|"*) fresh=1;; esac
${ATTEMPT_FILES_SH}
done`;

/**
 * Submits once: $1 the sbatch script's path, $2 the file that keeps the job id, $3 the job's
 * name, $4 the name of a spec file in its attempt's folder, $5 a folder; then, relative to $5,
 * the folder SLURM's own output goes to and the units' attempt folders. Relative, so that the
 * arguments of a thousand units stay well inside what one exec may carry (a channel's command
 * is one argument of the host's shell: 128 KiB at most on Linux). Stdin: each unit's spec, one
 * line each in the folders' order, then the sbatch script. When $2 holds an id the same
 * submission was made before: that id is printed and nothing is submitted again. So is the id
 * of a job SLURM knows by that name (sbatch answered, and the submitter died before it kept the
 * id); its specs are left as that submitter wrote them. That id is the array's (`%F`): each
 * task of an array that has started has a job id of its own (`%A`). Otherwise the specs are
 * written, then the script, then sbatch runs, from the folder the call started in (where the
 * job starts). One call for the whole job array, and no process per unit. Exit 11: a file
 * could not be written; 12: sbatch refused (its error on stderr); 13: squeue did not answer (its
 * error on stderr: a job it could not tell of may exist, so nothing is submitted); 127: no
 * sbatch on the PATH.
 */
export const SLURM_SUBMIT_SCRIPT = `[ -s "$2" ] && { cat "$2"; exit 0; }
command -v sbatch >/dev/null 2>&1 || { echo "sbatch is not on the PATH" >&2; exit 127; }
sbatch_file=$1 id_file=$2 name=$3 spec=$4 base=$5 here=$PWD; shift 5
{ cd -- "$base" 2>/dev/null || { mkdir -p -- "$base" && cd -- "$base"; }; } && mkdir -p -- "$@" && cd -- "$here" || exit 11
shift
nl='
'
out=$(squeue -h --states=all --name="$name" -o %F) || exit 13
id=\${out%%"$nl"*}
if [ -z "$id" ]; then
  for d do
    IFS= read -r line && printf '%s\\n' "$line" > "$base/$d/$spec" || { echo "cannot write $base/$d/$spec" >&2; exit 11; }
  done
  cat > "$sbatch_file.tmp" && mv -f "$sbatch_file.tmp" "$sbatch_file" || exit 11
  id=$(sbatch --parsable "$sbatch_file") || exit 12
fi
id=\${id%%;*}
printf '%s\\n' "$id" > "$id_file.tmp" && mv -f "$id_file.tmp" "$id_file" || exit 11
printf '%s\\n' "$id"`;

/**
 * Looks for the jobs of submissions, as SLURM_SUBMIT_SCRIPT would find them, submitting and
 * writing nothing: per submission, the file that keeps its job id and its job's name. Prints a
 * line per submission, in order: the kept id, else the id of a job SLURM knows by that name
 * (an array's own, `%F`, as there), else `-`. When squeue fails (a controller that does not
 * answer: asked this way, not --json's, it exits non-zero, its error on stderr) the script
 * exits with squeue's code, and what it printed says nothing.
 */
export const SLURM_FIND_SCRIPT = `nl='
'
while [ $# -ge 2 ]; do
  id=
  [ -s "$1" ] && IFS= read -r id < "$1"
  if [ -z "$id" ]; then
    out=$(squeue -h --states=all --name="$2" -o %F) || exit
    id=\${out%%"$nl"*}
  fi
  printf '%s\\n' "\${id:--}"
  shift 2
done`;

/** One submission as SLURM_SUBMIT_SCRIPT takes it. `spec` is one line (JSON.stringify's). */
export interface SlurmSubmission {
  sbatchFile: string;
  jobIdFile: string;
  /** the folder SLURM's own output goes to */
  logs: string;
  jobName: string;
  /** the sbatch script's text */
  script: string;
  /** the name of the spec file in each attempt's folder */
  specFile: string;
  attempts: readonly { dir: string; spec: string }[];
}

/** SLURM_SUBMIT_SCRIPT's arguments and stdin for one submission. */
export function slurmSubmitCall(sub: SlurmSubmission): { args: string[]; stdin: string } {
  const { sbatchFile, jobIdFile, jobName, specFile, attempts } = sub;
  for (const a of attempts) if (a.spec.includes('\n')) throw new Error(`slurmSubmitCall: the spec of ${a.dir} is more than one line`);
  const { base, rel } = underOneFolder([sub.logs, ...attempts.map((a) => a.dir)]);
  return {
    args: [sbatchFile, jobIdFile, jobName, specFile, base, ...rel],
    stdin: attempts.map((a) => `${a.spec}\n`).join('') + sub.script,
  };
}

/**
 * The deepest folder that holds every path, and each path relative to it (never empty). A
 * relative folder starts with `./`, so that `cd` never looks it up in CDPATH.
 */
export function underOneFolder(paths: readonly string[]): { base: string; rel: string[] } {
  if (new Set(paths.map((p) => p.startsWith('/'))).size > 1) throw new Error(`underOneFolder: absolute and relative paths mixed: ${paths.join(', ')}`);
  const parts = paths.map((p) => posix.normalize(p).replace(/(.)\/+$/, '$1').split('/'));
  const most = Math.min(...parts.map((p) => p.length - 1)); // each keeps a name of its own
  let common = 0;
  while (common < most && parts.every((p) => p[common] === parts[0]![common])) common++;
  const head = parts[0]!.slice(0, common);
  const rel = parts.map((p) => p.slice(common).join('/'));
  if (parts[0]![0] === '') return { base: head.join('/') || '/', rel };
  // normalize leaves `..` first or no dot at all
  return { base: head[0] === '..' ? head.join('/') : ['.', ...head].join('/'), rel };
}

/**
 * The most bytes of folders one submit call names. Its command is one argument of the login
 * node's shell, which Linux caps at 128 KiB; the script and the other arguments take the rest.
 */
export const SUBMIT_FOLDERS_MAX = 96 * 1024;

/**
 * How many units each job array takes, in order: at most `most`, and no more than fit one
 * submit call's command with SLURM's output folder (`logs`), so a cluster whose MaxArraySize
 * allows tens of thousands of tasks still gets commands an exec can carry. A folder counts as it
 * stands relative to the deepest folder holding them all, which it is at most within any one
 * array (slurmSubmitCall takes the array's own), with its quotes and the space before it.
 */
export function arraySizes(logs: string, folders: readonly string[], most: number): number[] {
  if (!folders.length) return [];
  const { rel } = underOneFolder([logs, ...folders]);
  const sizes: number[] = [];
  let bytes = 0;
  for (const folder of rel.slice(1)) {
    const size = argBytes([folder]);
    if (!sizes.length || sizes.at(-1)! >= most || bytes + size > SUBMIT_FOLDERS_MAX) {
      sizes.push(0);
      bytes = argBytes([rel[0]!]);
    }
    sizes[sizes.length - 1]!++;
    bytes += size;
  }
  return sizes;
}

/**
 * What `args` add to a script's command line, each in quotes and after a space: how the
 * callers that split their arguments over several calls count them (paths and job ids, which
 * hold no quote of their own).
 */
export function argBytes(args: readonly string[]): number {
  return args.reduce((n, a) => n + Buffer.byteLength(a) + 3, 0);
}

/**
 * The most tasks a job array of a run takes, as its first submit recorded it ($1, in the run's
 * SLURM folder): `recorded` and the number; else the cluster's `scontrol show config`, for
 * maxArrayTasks to read (it exits with scontrol's code when that fails).
 */
export const SLURM_ARRAY_SIZE_SCRIPT = `if [ -s "$1" ]; then echo recorded; exec cat -- "$1"; fi
exec scontrol show config`;

/**
 * Records $2 as the most tasks a job array of the run takes ($1), unless a submit beside it
 * recorded one first; prints the number the run keeps.
 */
export const SLURM_KEEP_ARRAY_SIZE_SCRIPT = `mkdir -p -- "$(dirname -- "$1")" && printf '%s\\n' "$2" > "$1.$$" || exit 1
ln -- "$1.$$" "$1" 2>/dev/null # a link is made only where no file is: the first record stays
rm -f -- "$1.$$"
exec cat -- "$1"`;

/** The most tasks a job array may have where the cluster does not say: SLURM's own default. */
export const DEFAULT_MAX_ARRAY_SIZE = 1001;

/** The most tasks one job array may have, from `scontrol show config`; null when it does not say. MaxArraySize 0 turns arrays off: one task each. */
export function maxArrayTasks(config: string): number | null {
  const m = /^MaxArraySize\s*=\s*(\d+)\s*$/m.exec(config);
  return m ? Math.max(1, Number(m[1])) : null;
}

/**
 * Asks jobs to stop: $1 `stop` (a user's stop: the stop request first, then USR1 to the runner,
 * which checkpoints), `preempt` (USR1 alone) or `kill` (scancel now); then per job its
 * attempt's folder and its id. A job that cannot be signalled (still pending) is cancelled
 * outright.
 */
export const SLURM_CANCEL_SCRIPT = `how=$1; shift
while [ $# -ge 2 ]; do
  d=$1 job=$2; shift 2
  if [ "$how" = stop ]; then { [ -d "$d" ] || mkdir -p "$d"; } && : > "$d/${STOP_REQUEST}"; fi
  if [ "$how" = kill ]; then scancel "$job"; else scancel --signal=USR1 --batch "$job" 2>/dev/null || scancel "$job"; fi
done`;

/** The job ids: cancels those that have not ended (after a stop's grace). */
export const SLURM_KILL_SCRIPT = `scancel "$@" 2>/dev/null; exit 0`;
