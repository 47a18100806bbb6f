// Reading a probe's output (probe-script.ts) back, purely: the nvidia-smi CSV and the other
// sections. What a host does not say stays null; a value nvidia-smi marks `[N/A]` or
// `[Not Supported]` is null too, never 0.
import { GPU_FIELDS } from './probe-script.js';

export interface GpuReading {
  index: number;
  name: string;
  uuid: string;
  utilPct: number | null;
  memUsedMiB: number | null;
  memTotalMiB: number | null;
  tempC: number | null;
  powerW: number | null;
  /** MIG mode is enabled: utilisation and memory are per MIG instance, not shown here */
  mig: boolean;
}

/** `ok`: nvidia-smi answered; `none`: no nvidia-smi; `unhealthy`: it failed or hung; `unknown`: the host did not answer. */
export type GpuHealth = 'ok' | 'none' | 'unhealthy' | 'unknown';

export interface ProbeReading {
  load1: number | null;
  cpus: number | null;
  memTotalBytes: number | null;
  memAvailBytes: number | null;
  diskFreeBytes: number | null;
  diskTotalBytes: number | null;
  gpuHealth: Exclude<GpuHealth, 'unknown'>;
  gpuError: string | null;
  gpus: GpuReading[];
  tmux: string[];
}

/** A number nvidia-smi printed, or null for its `[N/A]`, `[Not Supported]`, `[Unknown Error]` or an empty field. */
function smiNumber(field: string): number | null {
  const text = field.trim();
  if (text === '' || text.startsWith('[')) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/**
 * The rows of `nvidia-smi --query-gpu=<GPU_FIELDS> --format=csv,noheader,nounits`. Fields are
 * taken from both ends, so a name holding ", " stays whole. Throws on a line that is not a row.
 */
export function parseNvidiaSmi(csv: string): GpuReading[] {
  const tail = GPU_FIELDS.length - 2; // the fields after the name
  return csv
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const f = line.split(', ');
      const index = Number(f[0]);
      if (f.length < GPU_FIELDS.length || !Number.isInteger(index)) throw new Error(`nvidia-smi printed ${JSON.stringify(line.slice(0, 120))}`);
      const [uuid, util, used, total, temp, power, mig] = f.slice(-tail) as [string, string, string, string, string, string, string];
      return {
        index,
        name: f.slice(1, -tail).join(', ').trim(),
        uuid: uuid.trim(),
        utilPct: smiNumber(util),
        memUsedMiB: smiNumber(used),
        memTotalMiB: smiNumber(total),
        tempC: smiNumber(temp),
        powerW: smiNumber(power),
        mig: mig.trim() === 'Enabled',
      };
    });
}

/** The probe's output split at its `@@<name>` lines (`@@gpu-exit 0` keeps its word as the first line). */
function sections(out: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of out.split('\n')) {
    const head = /^@@([a-z-]+)(?: (.*))?$/.exec(line);
    if (head) map.set(head[1]!, (current = head[2] !== undefined ? [head[2]] : []));
    else current?.push(line);
  }
  return map;
}

function num(text: string | undefined): number | null {
  if (text === undefined || text.trim() === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/** `MemTotal:  16318480 kB` lines → bytes. */
function meminfo(lines: string[], key: string): number | null {
  const m = lines.map((l) => new RegExp(`^${key}:\\s+(\\d+)\\s*kB`).exec(l)).find(Boolean);
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * The memory a host's processes may use: /proc/meminfo's, unless their cgroup's limit (`cg` lines:
 * a container on a rented box) is lower. Then the limit is the total, and what is free is the limit
 * less the cgroup's usage (its inactive file pages, which the kernel reclaims, not counted).
 */
function memory(lines: string[]): { total: number | null; avail: number | null } {
  const total = meminfo(lines, 'MemTotal');
  const avail = meminfo(lines, 'MemAvailable');
  const cg = new Map(lines.flatMap((l) => {
    const m = /^cg (\S+) (\d+)$/.exec(l.trim());
    return m ? [[m[1]!, Number(m[2])] as const] : [];
  }));
  const limit = cg.get('limit');
  if (limit === undefined || (total !== null && limit >= total)) return { total, avail };
  const usage = cg.get('usage');
  if (usage === undefined) return { total: limit, avail: avail === null ? null : Math.min(avail, limit) };
  const used = Math.max(0, usage - (cg.get('total_inactive_file') ?? cg.get('inactive_file') ?? 0));
  const free = Math.max(0, limit - used);
  return { total: limit, avail: avail === null ? free : Math.min(avail, free) };
}

/**
 * `df -Pk`: a header, then `fs 1024-blocks used available capacity mount` (a long fs name does not
 * wrap with -P). A space in the fs name or the mount point splits it into more words, so the row
 * is read around its capacity column (`44%`, or `-`), the first one after three numbers.
 */
function dfBytes(lines: string[]): { total: number | null; free: number | null } {
  const row = lines.filter((l) => l.trim()).at(1)?.trim().split(/\s+/) ?? [];
  const at = row.findIndex((f, i) => i >= 4 && /^(\d+%|-)$/.test(f) && row.slice(i - 3, i).every((n) => /^\d+$/.test(n)));
  if (at < 0) return { total: null, free: null };
  return { total: Number(row[at - 3]) * 1024, free: Number(row[at - 1]) * 1024 };
}

/** What the gpu section and its closing `@@gpu-exit <status>` say. */
function gpuState(lines: string[], exit: string | undefined, timeoutSec: number): Pick<ProbeReading, 'gpuHealth' | 'gpuError' | 'gpus'> {
  const text = lines.join('\n').trim();
  if (exit === 'none') return { gpuHealth: 'none', gpuError: null, gpus: [] };
  if (exit === undefined) return { gpuHealth: 'unhealthy', gpuError: 'the probe ended before nvidia-smi did', gpus: [] };
  if (exit === '124' || exit === '137') return { gpuHealth: 'unhealthy', gpuError: `nvidia-smi did not answer within ${timeoutSec}s`, gpus: [] };
  if (exit !== '0') {
    const why = text.split('\n').at(-1)?.trim();
    return { gpuHealth: 'unhealthy', gpuError: `nvidia-smi exited ${exit}${why ? `: ${why.slice(0, 200)}` : ''}`, gpus: [] };
  }
  try {
    return { gpuHealth: 'ok', gpuError: null, gpus: parseNvidiaSmi(text) };
  } catch (err) {
    return { gpuHealth: 'unhealthy', gpuError: (err as Error).message, gpus: [] };
  }
}

/** One probe's output; `gpuTimeoutSec` is the limit nvidia-smi ran under (for the message). */
export function parseProbe(out: string, gpuTimeoutSec: number): ProbeReading {
  const s = sections(out);
  const get = (name: string) => s.get(name) ?? [];
  const disk = dfBytes(get('disk'));
  const mem = memory(get('mem'));
  return {
    load1: num(get('load')[0]?.split(/\s+/)[0]),
    cpus: num(get('cpus')[0]),
    memTotalBytes: mem.total,
    memAvailBytes: mem.avail,
    diskFreeBytes: disk.free,
    diskTotalBytes: disk.total,
    tmux: get('tmux').map((l) => l.trim()).filter(Boolean),
    ...gpuState(get('gpu'), s.get('gpu-exit')?.[0]?.trim(), gpuTimeoutSec),
  };
}
