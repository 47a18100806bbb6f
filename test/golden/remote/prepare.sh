test -x "$1" || exit 3
mkdir -p "$2" || { c=$?; echo "mkdir $c"; exit 4; }
for f in "$3"/*; do if [ -f "$f" ]; then printf 'file %s\n' "$f"; fi; done
if [ -n "$4" ]; then
  e=empty
  for f in "$2"/* "$2"/.[!.]* "$2"/..?*; do if [ -e "$f" ] || [ -L "$f" ]; then e=; break; fi; done
  [ -z "$e" ] || echo empty
fi
exit 0
