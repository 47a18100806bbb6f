d=$1
touch "$d/stop-request"
pid=$(sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' "$d/status.json" | head -n 1)
[ -n "$pid" ] && kill -"$2" "$pid"
