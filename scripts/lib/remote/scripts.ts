// The fixed POSIX sh scripts a backend runs on a host (through `sh -c <script> sh <args...>`).
// Values only ever arrive as positional parameters, never as script text; each script is one
// round trip. They are checked against golden files (test/golden/remote/).
import { LIVE_FILE, STOP_REQUEST } from '../runner/attempt-spec.js';

/**
 * Reads an attempt's live.json (attempt folder $d), which its runner keeps while it runs
 * (runner/attempt-live.ts): its text in $lv, its count of event lines in $n, whether it holds
 * the newest metrics line in $mt, and the process it names ($pid, started at $st clock ticks
 * into the boot $bt). Only the shell's own `read`: no process. Each top-level field is on a
 * line of its own; a view without a count is none.
 */
export const LIVE_READ_SH = `lv= n= mt= pid= bt= st=
if [ -r "$d/${LIVE_FILE}" ]; then while IFS= read -r l || [ -n "$l" ]; do lv=$lv$l$nl; case $l in
  '  "events": '*) n=\${l#*: }; n=\${n%,};;
  '  "metrics": '*) mt=1;;
  '  "pid": '*) pid=\${l#*: }; pid=\${pid%,};;
  '  "boot_id": "'*) bt=\${l#*: \\"}; bt=\${bt%\\",};;
  '  "start_ticks": "'*) st=\${l#*: \\"}; st=\${st%\\",};;
esac; done 2>/dev/null <"$d/${LIVE_FILE}"; fi
case $n in ''|*[!0-9]*) lv=;; esac`;

/**
 * `runner_lives`: sets $fresh when live.json (LIVE_READ_SH's $lv, $pid, $bt, $st) names a process
 * that is that very runner: the host's boot and the process's start time (field 22 of
 * /proc/<pid>/stat, after the command's closing paren) match, and it is not a zombie. A pid alone
 * is not enough: a runner gone without its end (a reboot, a kill) leaves it to whatever comes next.
 */
const RUNNER_LIVES_SH = `boot=
{ IFS= read -r boot </proc/sys/kernel/random/boot_id; } 2>/dev/null
nth20() { w=; [ $# -ge 20 ] || return 0; shift 19; w=$1; }
runner_lives() {
  fresh=
  case $pid in ''|*[!0-9]*) return 0;; esac
  [ -n "$lv" ] && [ -n "$st" ] && [ "$bt" = "$boot" ] || return 0
  s=; { IFS= read -r s </proc/"$pid"/stat; } 2>/dev/null
  s=\${s##*") "}
  case $s in [!ZX]*) nth20 $s; [ "$w" = "$st" ] && fresh=1;; esac
  return 0
}`;

/**
 * An attempt's files as a poll reads them (attempt folder $d, event lines already read $from,
 * marker $m, its live.json read into $lv, $n and $mt; $fresh set where its runner is known to
 * run: an ssh poll saw it in /proc after that read, a SLURM poll's sacct says its job runs):
 * status.json, the live view, the events after those read (raw: a cut-off last line shows as
 * such), the newest metrics line, and the last non-empty line of the newer of stdout.log and
 * stderr.log (stderr.log when as new, as `ls -t` orders a tie), each section ended by the
 * marker. The ssh and SLURM polls run it for every attempt every tick, on hosts where each
 * process started costs a few ms. While status.json says the attempt runs, the live view
 * stands in for the log and the metrics (a metrics line too long for the view is read from its
 * file), and for the events while its runner is known to run and it counts no more than were
 * read. Otherwise the files are read with a `tail` each (status.json by the shell itself, the
 * newer log found by `test -nt`, its last non-empty line, a line of spaces counting as empty,
 * found by the shell in the log's last 4 KiB). A file that is empty or missing (no metrics, a
 * runner just started) costs none.
 */
export const ATTEMPT_FILES_SH = `run=
if [ -r "$d/status.json" ]; then while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; case $l in '  "state": "running",') run=1;; esac; done 2>/dev/null <"$d/status.json"; fi; printf %s "$m"
[ -n "$run" ] || lv=
printf %s "$lv"; printf %s "$m"
if [ -s "$d/events.jsonl" ] && { [ -z "$lv" ] || [ -z "$fresh" ] || [ "$n" -gt "$from" ]; }; then tail -n +"$((from + 1))" "$d/events.jsonl" 2>/dev/null; fi; printf %s "$m"
if [ -z "$lv" ] || [ -z "$mt" ]; then [ -s "$d/metrics.jsonl" ] && tail -n 1 "$d/metrics.jsonl" 2>/dev/null; fi; printf %s "$m"
if [ -z "$lv" ]; then
f=$d/stdout.log
if [ -f "$d/stderr.log" ] && ! [ "$f" -nt "$d/stderr.log" ]; then f=$d/stderr.log; fi
if [ -s "$f" ]; then
  t=$(tail -c 4096 "$f" 2>/dev/null)
  while :; do
    l=\${t##*"$nl"}
    case $l in *[!\\ ]*) printf '%s\\n' "$l"; break;; esac
    case $t in *"$nl"*) t=\${t%"$nl"*};; *) break;; esac
  done
fi; fi; printf %s "$m"`;

/** The reason of a stopped attempt whose runner was killed before it wrote its end. */
export const STOP_KILLED_REASON = 'stopped by the user (its runner was killed before it wrote its end)';

/**
 * Defines `cancelled`: rewrites the status.json of attempt folder $d, when it says the attempt
 * runs, as the end of a user's stop whose runner was killed before it could write one (`make stop
 * force=1`), every other field kept. Written as the runner writes it, whole to a temp name beside
 * it and renamed over it, so a poll reads the old status or the new, never a part. Only the
 * shell's own `read` and one `mv`, and `date` for the end.
 */
export const CANCELLED_SH = `cancelled() {
  sf=$d/.status.json.cancel.$$ sr=
  { while IFS= read -r sl || [ -n "$sl" ]; do sc=; case $sl in *,) sc=,;; esac; case $sl in
    '  "state": "running",') sr=1 sl="  \\"state\\": \\"cancelled\\"$sc";;
    '  "reason": '*) sl="  \\"reason\\": \\"${STOP_KILLED_REASON}\\"$sc";;
    '  "ended_at": '*) sl="  \\"ended_at\\": \\"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\\"$sc";;
  esac; printf '%s\\n' "$sl"; done <"$d/status.json" >"$sf"; } 2>/dev/null
  if [ -n "$sr" ]; then mv -f "$sf" "$d/status.json"; else rm -f "$sf"; fi
}`;

/**
 * Polls any number of attempts of one host in one call. $1 a marker, $2 the tmux socket, then
 * per attempt three words: its folder, its tmux session, the event lines already read. For each
 * attempt it prints six sections, each ended by the marker: whether it runs (alive or gone),
 * then ATTEMPT_FILES_SH's. An attempt runs while the process its live.json names does (its pid,
 * start time and boot all match /proc: a pid reused is not taken for it), or else while its tmux
 * session lives. The sessions are listed once, for the first attempt that needs it (a runner
 * just started, a host without /proc, a runner gone), and before its files are read, so a
 * runner that writes its final status and exits between the two reads is seen with its status,
 * never as gone without one. A runner gone while its status.json says it runs is lost, unless it
 * was asked to stop (its stop request is there: `make stop force=1` kills it, and a poll may come
 * between the kill and CANCEL_SCRIPT's rewrite): its status is then rewritten as cancelled first,
 * so the stop is not taken for a lost worker and resumed.
 */
export const POLL_SCRIPT = `m=$1 sock=$2; shift 2
nl='
'
${CANCELLED_SH}
listed= sessions=
${RUNNER_LIVES_SH}
while [ $# -ge 3 ]; do
d=$1 session=$2 from=$3; shift 3
${LIVE_READ_SH}
runner_lives
if [ -n "$fresh" ]; then printf alive; else
  lv=
  if [ -z "$listed" ]; then listed=1; sessions=$nl$(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null)$nl; fi
  case $sessions in *"$nl$session$nl"*) printf alive;; *) printf gone; [ -f "$d/${STOP_REQUEST}" ] && cancelled;; esac
fi; printf %s "$m"
${ATTEMPT_FILES_SH}
done`;

/**
 * prepare's checks in one call: $1 the node runtime (exit 3 without it); $2 the repo folder
 * (made; a failed mkdir prints "mkdir <status>" and exits 4); $3 the runtime folder (prints
 * "file <path>" for each file there: the runners); $4 non-empty: prints "empty" when $2 is
 * (by the shell's globs, dot files and dangling links too: no process).
 */
export const PREPARE_SCRIPT = `test -x "$1" || exit 3
mkdir -p "$2" || { c=$?; echo "mkdir $c"; exit 4; }
for f in "$3"/*; do if [ -f "$f" ]; then printf 'file %s\\n' "$f"; fi; done
if [ -n "$4" ]; then
  e=empty
  for f in "$2"/* "$2"/.[!.]* "$2"/..?*; do if [ -e "$f" ] || [ -L "$f" ]; then e=; break; fi; done
  [ -z "$e" ] || echo empty
fi
exit 0`;

/**
 * submit's remote side: any number of attempts of one host in one call. $1 the tmux socket, then
 * per attempt five words: its folder, its tmux session, its spec file, the session name without
 * the attempt number, the command the session runs; stdin holds each attempt's spec, one line
 * each, in the same order. Per attempt it prints one line, `<code> <detail>`: 0 started; 10
 * started already (a final status, or its session lives); 12 an earlier attempt of the same unit
 * still runs (its session lives and it has no final status yet; one that is only exiting after
 * writing it does not count), the detail naming its session, since two runners of one unit would
 * share its scratch and checkpoints; 11 its spec could not be written; else tmux's exit status
 * after one retry, the detail its last line. Sessions are listed once, and each one this call
 * starts joins the list, so a later attempt of the same unit in the same call is refused too.
 *
 * Starting a shard is most of a fan-out's cost on a host, so the processes it takes are few: one
 * `mkdir -p` for every spec's folder, the specs written by the shell itself (nothing reads one
 * before its session starts, so no temp file and rename), and the sessions started by one tmux
 * client for as many as fit in one of tmux's messages (16 KiB: ~12,000 bytes of arguments here).
 * `new-session -P` prints each session it made; tmux stops a command list at its first error, so
 * the first attempt it did not print is the one that failed: it gets one more try (tmux's server
 * exits as its last session ends, and can do so under a new client), unless its runner got to
 * start (it writes its status first), and the attempts after it go in the next round. A command
 * never ends in `;`, which tmux would take for a separator: tmuxSessionCommand quotes such a word.
 * The server of this socket runs the sessions' `cd … && exec …` with /bin/sh, not the login
 * shell: where that is dash (Debian, Ubuntu), a shard's start costs ~4 ms less than with bash.
 * The attempts' fields are kept in numbered variables (`eval` assigns them by name: their values
 * are never parsed as code).
 */
export const SUBMIT_SCRIPT = `sock=$1; shift
nl='
'
live=$nl$(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null)$nl
n=0
while [ $# -ge 5 ]; do
d=$1 session=$2 spec=$3 stem=$4 cmd=$5; shift 5
IFS= read -r body || body=
n=$((n + 1)) code=0 why=
[ -f "$d/status.json" ] && code=10
case $live in *"$nl$session$nl"*) code=10;; esac
if [ $code = 0 ]; then
  for s in $live; do
    k=\${s#"$stem"}
    [ "$k" != "$s" ] || continue
    case $k in ''|*[!0-9]*) continue;; esac
    st=\${d%/*}/$k/status.json
    [ -f "$st" ] && ! grep -q '"state": "running"' "$st" && continue
    code=12 why=$s; break
  done
fi
[ $code = 0 ] && code=start live=$live$session$nl
eval "code_$n=\\$code why_$n=\\$why d_$n=\\$d s_$n=\\$session c_$n=\\$cmd spec_$n=\\$spec body_$n=\\$body tries_$n="
done
set --
i=0; while [ $i -lt $n ]; do i=$((i + 1))
  eval "code=\\$code_$i spec=\\$spec_$i"
  [ "$code" = start ] && set -- "$@" "\${spec%/*}"
done
[ $# = 0 ] || mkdir -p -- "$@" 2>/dev/null
i=0; while [ $i -lt $n ]; do i=$((i + 1))
  eval "code=\\$code_$i spec=\\$spec_$i body=\\$body_$i"
  [ "$code" = start ] || continue
  { printf '%s\\n' "$body" > "$spec"; } 2>/dev/null || eval "code_$i=11"
done
while :; do
  set --; size=0 last=0
  i=0; while [ $i -lt $n ]; do i=$((i + 1))
    eval "code=\\$code_$i session=\\$s_$i cmd=\\$c_$i"
    [ "$code" = start ] || continue
    size=$((size + \${#session} + \${#cmd} + 48))
    [ $# -gt 0 ] && [ $size -gt 12000 ] && break
    set -- "$@" new-session -d -P -F '#{session_name}' -s "$session" "$cmd" ';'; last=$i
  done
  [ $# -gt 0 ] || break
  out=$(tmux -L "$sock" set-option -g default-shell /bin/sh ';' "$@" 2>&1) && rc=0 || rc=$?
  i=0; while [ $i -lt $last ]; do i=$((i + 1))
    eval "code=\\$code_$i session=\\$s_$i d=\\$d_$i tries=\\$tries_$i"
    [ "$code" = start ] || continue
    case $nl$out$nl in *"$nl$session$nl"*) eval "code_$i=0"; continue;; esac
    if [ -f "$d/status.json" ]; then eval "code_$i=10"
    elif [ -n "$tries" ]; then [ $rc = 0 ] && rc=1; why=\${out##*"$nl"}; eval "code_$i=\\$rc why_$i=\\$why"
    else eval "tries_$i=1"; fi
    break
  done
done
i=0; while [ $i -lt $n ]; do i=$((i + 1))
  eval "printf '%s %s\\n' \\"\\$code_$i\\" \\"\\$why_$i\\""
done`;

/**
 * Finds, starting nothing and writing nothing, which attempts of one host a submit started (for
 * a submit whose answer was lost). $1 the tmux socket, then per attempt two words: its folder and
 * its tmux session, as SUBMIT_SCRIPT took them. Per attempt it prints one line: `started` where
 * SUBMIT_SCRIPT would answer 10 (the folder has a status.json, or the session lives), else
 * `absent` (a spec written without a session started is not started). Sessions are listed once,
 * before the folders are read: a runner writes its status as it starts, so one that ends between
 * the two is seen by its status. Only the shell's own tests and one tmux client.
 */
export const FIND_SCRIPT = `sock=$1; shift
nl='
'
live=$nl$(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null)$nl
while [ $# -ge 2 ]; do
d=$1 session=$2; shift 2
found=absent
[ -f "$d/status.json" ] && found=started
case $live in *"$nl$session$nl"*) found=started;; esac
printf '%s\\n' "$found"
done`;

/**
 * Asks an attempt's runner to stop: the stop request marks a user's stop, then the signal ($2),
 * only while its status.json says it runs (a runner that wrote its end is done, and its pid may be
 * another process's by now) and its live.json names that very process (pid, boot and start time
 * as /proc has them): a runner gone without its end (the host rebooted, it was killed) left its
 * pid to whatever came after, which is never signalled; its poll finds it gone and stopped. Where
 * live.json names no process that way (no /proc there), the pid in status.json is signalled. A
 * runner killed (KILL), or gone, writes no end: its status is rewritten as cancelled here, as the
 * runner would have ended it, or the poll would find it gone without one and record it lost,
 * which resumes it.
 */
export const CANCEL_SCRIPT = `d=$1 sig=$2
touch "$d/${STOP_REQUEST}"
grep -q '^  "state": "running",$' "$d/status.json" 2>/dev/null || exit 0
${CANCELLED_SH}
nl='
'
${LIVE_READ_SH}
${RUNNER_LIVES_SH}
if [ -n "$lv" ] && [ -n "$st" ]; then
  runner_lives
  [ -n "$fresh" ] || pid=
else
  pid=$(sed -n 's/^ *"pid": *\\([0-9][0-9]*\\).*/\\1/p' "$d/status.json" | head -n 1)
fi
[ -n "$pid" ] && kill -"$sig" "$pid"
[ "$sig" != KILL ] || cancelled`;
