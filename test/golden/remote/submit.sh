sock=$1; shift
live=" $(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null | tr '\n' ' ')"
while [ $# -ge 5 ]; do
d=$1 session=$2 spec=$3 stem=$4 cmd=$5; shift 5
IFS= read -r body || body=
code=0 why=
[ -f "$d/status.json" ] && code=10
case $live in *" $session "*) code=10;; esac
if [ $code = 0 ]; then
  for s in $live; do
    n=${s#"$stem"}
    [ "$n" != "$s" ] || continue
    case $n in ''|*[!0-9]*) continue;; esac
    st=${d%/*}/$n/status.json
    [ -f "$st" ] && ! grep -q '"state": "running"' "$st" && continue
    code=12 why=$s; break
  done
fi
if [ $code = 0 ]; then
  { mkdir -p "${spec%/*}" && printf '%s\n' "$body" > "$spec.tmp" && mv -f "$spec.tmp" "$spec"; } || code=11
fi
if [ $code = 0 ]; then
  why=$(tmux -L "$sock" new-session -d -s "$session" "$cmd" 2>&1) || code=$?
  # tmux's server exits as its last session ends, and can do so under a new client: once more,
  # unless the attempt's runner got to start (it writes its status first)
  if [ $code != 0 ]; then
    if [ -f "$d/status.json" ]; then code=10
    else code=0; why=$(tmux -L "$sock" new-session -d -s "$session" "$cmd" 2>&1) || code=$?; fi
  fi
  [ $code = 0 ] && live="$live$session "
fi
case $why in *'
'*) why=$(printf '%s' "$why" | tail -n 1);; esac
printf '%s %s\n' "$code" "$why"
done
