sock=$1; shift
nl='
'
live=$nl$(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null)$nl
while [ $# -ge 2 ]; do
d=$1 session=$2; shift 2
found=absent
[ -f "$d/status.json" ] && found=started
case $live in *"$nl$session$nl"*) found=started;; esac
printf '%s\n' "$found"
done
