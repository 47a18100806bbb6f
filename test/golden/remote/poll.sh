m=$1 sock=$2; shift 2
nl='
'
cancelled() {
  sf=$d/.status.json.cancel.$$ sr=
  { while IFS= read -r sl || [ -n "$sl" ]; do sc=; case $sl in *,) sc=,;; esac; case $sl in
    '  "state": "running",') sr=1 sl="  \"state\": \"cancelled\"$sc";;
    '  "reason": '*) sl="  \"reason\": \"stopped by the user (its runner was killed before it wrote its end)\"$sc";;
    '  "ended_at": '*) sl="  \"ended_at\": \"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\"$sc";;
  esac; printf '%s\n' "$sl"; done <"$d/status.json" >"$sf"; } 2>/dev/null
  if [ -n "$sr" ]; then mv -f "$sf" "$d/status.json"; else rm -f "$sf"; fi
}
listed= sessions=
boot=
{ IFS= read -r boot </proc/sys/kernel/random/boot_id; } 2>/dev/null
nth20() { w=; [ $# -ge 20 ] || return 0; shift 19; w=$1; }
runner_lives() {
  fresh=
  case $pid in ''|*[!0-9]*) return 0;; esac
  [ -n "$lv" ] && [ -n "$st" ] && [ "$bt" = "$boot" ] || return 0
  s=; { IFS= read -r s </proc/"$pid"/stat; } 2>/dev/null
  s=${s##*") "}
  case $s in [!ZX]*) nth20 $s; [ "$w" = "$st" ] && fresh=1;; esac
  return 0
}
while [ $# -ge 3 ]; do
d=$1 session=$2 from=$3; shift 3
lv= n= mt= pid= bt= st=
if [ -r "$d/live.json" ]; then while IFS= read -r l || [ -n "$l" ]; do lv=$lv$l$nl; case $l in
  '  "events": '*) n=${l#*: }; n=${n%,};;
  '  "metrics": '*) mt=1;;
  '  "pid": '*) pid=${l#*: }; pid=${pid%,};;
  '  "boot_id": "'*) bt=${l#*: \"}; bt=${bt%\",};;
  '  "start_ticks": "'*) st=${l#*: \"}; st=${st%\",};;
esac; done 2>/dev/null <"$d/live.json"; fi
case $n in ''|*[!0-9]*) lv=;; esac
runner_lives
if [ -n "$fresh" ]; then printf alive; else
  lv=
  if [ -z "$listed" ]; then listed=1; sessions=$nl$(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null)$nl; fi
  case $sessions in *"$nl$session$nl"*) printf alive;; *) printf gone; [ -f "$d/stop-request" ] && cancelled;; esac
fi; printf %s "$m"
run=
if [ -r "$d/status.json" ]; then while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; case $l in '  "state": "running",') run=1;; esac; done 2>/dev/null <"$d/status.json"; fi; printf %s "$m"
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
    l=${t##*"$nl"}
    case $l in *[!\ ]*) printf '%s\n' "$l"; break;; esac
    case $t in *"$nl"*) t=${t%"$nl"*};; *) break;; esac
  done
fi; fi; printf %s "$m"
done
