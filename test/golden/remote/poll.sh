m=$1 sock=$2; shift 2
while [ $# -ge 3 ]; do
d=$1 session=$2 from=$3; shift 3
if tmux -L "$sock" has-session -t "=$session" 2>/dev/null; then printf alive; else printf gone; fi; printf %s "$m"
cat "$d/status.json" 2>/dev/null; printf %s "$m"
tail -n +"$((from + 1))" "$d/events.jsonl" 2>/dev/null; printf %s "$m"
tail -n 1 "$d/metrics.jsonl" 2>/dev/null; printf %s "$m"
f=$(ls -t "$d/stdout.log" "$d/stderr.log" 2>/dev/null | head -n 1)
if [ -n "$f" ]; then tail -c 4096 "$f" | grep -v '^ *$' | tail -n 1; fi; printf %s "$m"
done
