test -x "$1" || exit 3
mkdir -p "$2" || { c=$?; echo "mkdir $c"; exit 4; }
for f in "$3"/*; do if [ -f "$f" ]; then printf 'file %s\n' "$f"; fi; done
if [ -n "$4" ] && [ -z "$(ls -A "$2")" ]; then echo empty; fi
exit 0
