sock=$1; shift
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
    k=${s#"$stem"}
    [ "$k" != "$s" ] || continue
    case $k in ''|*[!0-9]*) continue;; esac
    st=${d%/*}/$k/status.json
    [ -f "$st" ] && ! grep -q '"state": "running"' "$st" && continue
    code=12 why=$s; break
  done
fi
[ $code = 0 ] && code=start live=$live$session$nl
eval "code_$n=\$code why_$n=\$why d_$n=\$d s_$n=\$session c_$n=\$cmd spec_$n=\$spec body_$n=\$body tries_$n="
done
set --
i=0; while [ $i -lt $n ]; do i=$((i + 1))
  eval "code=\$code_$i spec=\$spec_$i"
  [ "$code" = start ] && set -- "$@" "${spec%/*}"
done
[ $# = 0 ] || mkdir -p -- "$@" 2>/dev/null
i=0; while [ $i -lt $n ]; do i=$((i + 1))
  eval "code=\$code_$i spec=\$spec_$i body=\$body_$i"
  [ "$code" = start ] || continue
  { printf '%s\n' "$body" > "$spec"; } 2>/dev/null || eval "code_$i=11"
done
while :; do
  set --; size=0 last=0
  i=0; while [ $i -lt $n ]; do i=$((i + 1))
    eval "code=\$code_$i session=\$s_$i cmd=\$c_$i"
    [ "$code" = start ] || continue
    size=$((size + ${#session} + ${#cmd} + 48))
    [ $# -gt 0 ] && [ $size -gt 12000 ] && break
    set -- "$@" new-session -d -P -F '#{session_name}' -s "$session" "$cmd" ';'; last=$i
  done
  [ $# -gt 0 ] || break
  out=$(tmux -L "$sock" set-option -g default-shell /bin/sh ';' "$@" 2>&1) && rc=0 || rc=$?
  i=0; while [ $i -lt $last ]; do i=$((i + 1))
    eval "code=\$code_$i session=\$s_$i d=\$d_$i tries=\$tries_$i"
    [ "$code" = start ] || continue
    case $nl$out$nl in *"$nl$session$nl"*) eval "code_$i=0"; continue;; esac
    if [ -f "$d/status.json" ]; then eval "code_$i=10"
    elif [ -n "$tries" ]; then [ $rc = 0 ] && rc=1; why=${out##*"$nl"}; eval "code_$i=\$rc why_$i=\$why"
    else eval "tries_$i=1"; fi
    break
  done
done
i=0; while [ $i -lt $n ]; do i=$((i + 1))
  eval "printf '%s %s\n' \"\$code_$i\" \"\$why_$i\""
done
