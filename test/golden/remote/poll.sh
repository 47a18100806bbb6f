m=$1 sock=$2; shift 2
live="
$(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null)
"
while [ $# -ge 3 ]; do
d=$1 session=$2 from=$3; shift 3
case $live in *"
$session
"*) printf alive;; *) printf gone;; esac; printf %s "$m"
if [ -r "$d/status.json" ]; then while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done 2>/dev/null <"$d/status.json"; fi; printf %s "$m"
[ -s "$d/events.jsonl" ] && tail -n +"$((from + 1))" "$d/events.jsonl" 2>/dev/null; printf %s "$m"
[ -s "$d/metrics.jsonl" ] && tail -n 1 "$d/metrics.jsonl" 2>/dev/null; printf %s "$m"
f=$d/stdout.log
if [ -f "$d/stderr.log" ] && ! [ "$f" -nt "$d/stderr.log" ]; then f=$d/stderr.log; fi
if [ -s "$f" ]; then
  t=$(tail -c 4096 "$f" 2>/dev/null)
  nl='
'
  while :; do
    l=${t##*"$nl"}
    case $l in *[!\ ]*) printf '%s\n' "$l"; break;; esac
    case $t in *"$nl"*) t=${t%"$nl"*};; *) break;; esac
  done
fi; printf %s "$m"
done
