// Whether a process another shell recorded is still the one it recorded: a pid plus its start
// time from /proc, so a pid the system handed to a new process is not mistaken for it.
import { readFileSync } from 'node:fs';

/**
 * The fields of /proc/<pid>/stat after the command name, from the state letter on (`fields[0]`;
 * proc(5) numbers it 3); null where there is no such process, or no /proc. The name, in
 * parentheses, may hold spaces: the fields count from its closing one.
 */
export function procStatFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** State letter and start time from /proc (Linux); null where there is no /proc. */
function procStat(pid: number): { state: string; start: string } | null {
  const fields = procStatFields(pid);
  return fields && { state: fields[0] ?? '', start: fields[19] ?? '' };
}

export function processStartTime(pid: number): string | null {
  return procStat(pid)?.start ?? null;
}

/** Alive, not a zombie (an orphan nobody reaped yet), and not a reused pid. */
export function isAlive(pid: number, start: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = procStat(pid);
  if (!stat) return true;
  return stat.state !== 'Z' && stat.state !== 'X' && (start === null || stat.start === start);
}
