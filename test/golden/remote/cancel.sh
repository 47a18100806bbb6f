d=$1
touch "$d/stop-request"
grep -q '^  "state": "running",$' "$d/status.json" 2>/dev/null || exit 0
cancelled() {
  sf=$d/.status.json.cancel.$$ sr=
  { while IFS= read -r sl || [ -n "$sl" ]; do sc=; case $sl in *,) sc=,;; esac; case $sl in
    '  "state": "running",') sr=1 sl="  \"state\": \"cancelled\"$sc";;
    '  "reason": '*) sl="  \"reason\": \"stopped by the user (its runner was killed before it wrote its end)\"$sc";;
    '  "ended_at": '*) sl="  \"ended_at\": \"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\"$sc";;
  esac; printf '%s\n' "$sl"; done <"$d/status.json" >"$sf"; } 2>/dev/null
  if [ -n "$sr" ]; then mv -f "$sf" "$d/status.json"; else rm -f "$sf"; fi
}
pid=$(sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' "$d/status.json" | head -n 1)
[ -n "$pid" ] && kill -"$2" "$pid"
[ "$2" != KILL ] || cancelled
