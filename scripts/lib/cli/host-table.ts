// make hosts' table: one row per host, and one more per GPU after its first, so every GPU shows
// its utilisation, memory, temperature and power (or MIG / unhealthy) in the same columns.
import type { GpuReading, HostHealth, HostIdentity } from '../probe/index.js';
import { formatBytes } from '../ui/format.js';
import { renderTable } from '../ui/table.js';

export const HOST_HEADERS = ['HOST', 'ADDRESS', 'FLEETS', 'STATE', 'LOAD', 'MEM FREE', 'DISK FREE', 'GPU', 'UTIL', 'GPU MEM', 'TEMP', 'POWER', 'TMUX', '$/H'];

const or = <T>(v: T | null, show: (v: T) => string) => (v === null ? '-' : show(v));
const gib = (mib: number) => (mib / 1024).toFixed(mib < 10 * 1024 ? 1 : 0);
const ofTotal = (free: number | null, total: number | null) => (free === null ? '-' : total === null ? formatBytes(free) : `${formatBytes(free)} / ${formatBytes(total)}`);

function gpuCells(g: GpuReading): string[] {
  const mem = g.memUsedMiB === null && g.memTotalMiB === null ? '-' : `${or(g.memUsedMiB, gib)}/${or(g.memTotalMiB, gib)} GiB`;
  return [`${g.index} ${g.name.replace(/^NVIDIA /, '')}${g.mig ? ' MIG' : ''}`, or(g.utilPct, (u) => `${u}%`), mem, or(g.tempC, (t) => `${t}°C`), or(g.powerW, (p) => `${Math.round(p)} W`)];
}

/** The GPU columns of a host's first row when it has no GPU to show. */
function gpuSummary(h: HostHealth): string[] {
  const what = h.gpuHealth === 'unhealthy' ? `unhealthy: ${h.gpuError ?? 'nvidia-smi failed'}` : h.gpuHealth === 'none' ? 'none' : '-';
  return [what, '', '', '', ''];
}

/** Rows for renderTable(HOST_HEADERS, ...), in the order given; a host without a probe yet is being asked. */
export function hostRows(hosts: readonly (HostHealth | HostIdentity)[]): string[][] {
  const rows: string[][] = [];
  for (const h of hosts) {
    const head = [h.host, h.address, h.fleets.join(' ') || '-'];
    const price = or(h.pricePerHour, (p) => p.toFixed(2));
    if (!('state' in h) || h.state === 'down') {
      const state = 'state' in h ? `down: ${h.error ?? 'no answer'}` : 'asking…';
      rows.push([...head, state, '', '', '', '', '', '', '', '', '', price]);
      continue;
    }
    const [first, ...more] = h.gpus.length ? h.gpus.map(gpuCells) : [gpuSummary(h)];
    rows.push([
      ...head,
      `up ${h.latencyMs} ms`,
      h.load1 === null ? '-' : `${h.load1.toFixed(2)}${h.cpus === null ? '' : `/${h.cpus}`}`,
      ofTotal(h.memAvailBytes, h.memTotalBytes),
      ofTotal(h.diskFreeBytes, h.diskTotalBytes),
      ...first!,
      h.tmux.join(' ') || '-',
      price,
    ]);
    for (const g of more) rows.push(['', '', '', '', '', '', '', ...g, '', '']);
  }
  return rows;
}

export function renderHostTable(hosts: readonly (HostHealth | HostIdentity)[]): string {
  return renderTable(HOST_HEADERS, hostRows(hosts));
}
