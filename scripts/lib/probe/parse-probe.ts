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

/** `df -Pk`: a header, then `fs 1024-blocks used available capacity mount` (a long fs name may not wrap with -P). */
function dfBytes(lines: string[]): { total: number | null; free: number | null } {
  const row = lines.filter((l) => l.trim()).at(1)?.trim().split(/\s+/);
  if (!row || row.length < 6) return { total: null, free: null };
  const total = num(row.at(-5));
  const free = num(row.at(-3));
  return { total: total === null ? null : total * 1024, free: free === null ? null : free * 1024 };
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
  return {
    load1: num(get('load')[0]?.split(/\s+/)[0]),
    cpus: num(get('cpus')[0]),
    memTotalBytes: meminfo(get('mem'), 'MemTotal'),
    memAvailBytes: meminfo(get('mem'), 'MemAvailable'),
    diskFreeBytes: disk.free,
    diskTotalBytes: disk.total,
    tmux: get('tmux').map((l) => l.trim()).filter(Boolean),
    ...gpuState(get('gpu'), s.get('gpu-exit')?.[0]?.trim(), gpuTimeoutSec),
  };
}
