d=$1 sock=$2 session=$3 spec=$4 stem=$5; shift 5
[ -f "$d/status.json" ] && exit 10
tmux -L "$sock" has-session -t "=$session" 2>/dev/null && exit 10
for s in $(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null); do
  n=${s#"$stem"}
  [ "$n" != "$s" ] || continue
  case $n in ''|*[!0-9]*) continue;; esac
  st=${d%/*}/$n/status.json
  [ -f "$st" ] && ! grep -q '"state": "running"' "$st" && continue
  echo "$s"; exit 12
done
mkdir -p "$(dirname "$spec")" && cat > "$spec.tmp" && mv -f "$spec.tmp" "$spec" || exit 11
exec "$@"
