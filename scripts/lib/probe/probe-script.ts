// The one command a probe runs on a host: a fixed POSIX sh script whose output comes in sections
// (`@@<name>` lines), so one round trip answers everything. nvidia-smi runs under its own
// `timeout`: a hung driver marks the GPUs unhealthy and the rest of the probe still arrives.
import { TMUX_SOCKET } from '../remote/host-layout.js';

/** The GPU fields asked for, in this order (parse-probe.ts reads them back from the right). */
export const GPU_FIELDS = [
  'index',
  'name',
  'uuid',
  'utilization.gpu',
  'memory.used',
  'memory.total',
  'temperature.gpu',
  'power.draw',
  'mig.mode.current',
] as const;

export const NVIDIA_SMI_QUERY = `--query-gpu=${GPU_FIELDS.join(',')}`;

/**
 * The memory cgroup of the probe's own process (a container's, on a rented box: /proc/meminfo
 * there is the whole machine's) as `cg <key> <bytes>` lines: its limit, usage and inactive file
 * pages (reclaimable), cgroup v1 or v2. Its folder is the one /proc/self/cgroup names, else the
 * mount's root (a container that sees only its own cgroup there). Only the shell's own `read`.
 */
const CGROUP_MEMORY_SH = `cr=/sys/fs/cgroup cg=
while IFS=: read -r _ c p; do case $c in memory) cr=/sys/fs/cgroup/memory cg=$cr$p;; '') [ -n "$cg" ] || cg=$cr$p;; esac; done 2>/dev/null </proc/self/cgroup
[ -d "$cg" ] || cg=$cr
for f in max:limit limit_in_bytes:limit current:usage usage_in_bytes:usage; do
  [ -r "$cg/memory.\${f%:*}" ] && read -r v 2>/dev/null <"$cg/memory.\${f%:*}" && printf 'cg %s %s\\n' "\${f#*:}" "$v"
done
[ -r "$cg/memory.stat" ] && while read -r k v; do case $k in inactive_file | total_inactive_file) printf 'cg %s %s\\n' "$k" "$v" ;; esac; done 2>/dev/null <"$cg/memory.stat"`;

/**
 * $1: the host's project folder (df reports the filesystem of its nearest existing folder);
 * $2: seconds nvidia-smi may take. The tmux sessions are the user's own and the attempts' (on
 * switchyard's own socket). The exit status of nvidia-smi (124: timed out) or `none`
 * closes the gpu section. /proc files are read by the shell itself: each process a probe
 * starts costs the host a few ms, on every host, every few seconds the dashboard is open.
 */
export const PROBE_SCRIPT = `export LC_ALL=C
echo @@load; read -r l 2>/dev/null </proc/loadavg && printf '%s\\n' "$l"
echo @@cpus; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
echo @@mem; while read -r k v u; do case $k in MemTotal: | MemAvailable:) printf '%s %s %s\\n' "$k" "$v" "$u" ;; esac; done 2>/dev/null </proc/meminfo
${CGROUP_MEMORY_SH}
echo @@disk; d=$1; while [ ! -d "$d" ] && [ "$d" != . ] && [ "$d" != / ]; do d=$(dirname "$d"); done; df -Pk "$d" 2>/dev/null
echo @@tmux; tmux list-sessions -F '#{session_name}' 2>/dev/null; tmux -L ${TMUX_SOCKET} list-sessions -F '#{session_name}' 2>/dev/null
echo @@gpu
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout -k 1 "$2" nvidia-smi ${NVIDIA_SMI_QUERY} --format=csv,noheader,nounits 2>&1
  echo "@@gpu-exit $?"
else
  echo "@@gpu-exit none"
fi
`;

/** The argv of one probe: the script and its two arguments, never spliced into shell code. */
export function probeArgv(root: string, gpuTimeoutSec: number): string[] {
  return ['sh', '-c', PROBE_SCRIPT, 'sh', root, String(gpuTimeoutSec)];
}

/** nvidia-smi gets half the host's deadline (at least 1 s), leaving the rest for the round trip. */
export function gpuTimeoutSec(deadlineSec: number): number {
  return Math.max(1, Math.round(deadlineSec * 5) / 10);
}
