// Host probes, purely: the nvidia-smi CSV and the probe script's other sections read back, the
// cost of a run on priced hosts, and the price_per_hour config field.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCost } from '../../scripts/lib/actions/cost.js';
import { HOST_HEADERS, hostRows } from '../../scripts/lib/cli/host-table.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { HostWatch, meanUtil } from '../../scripts/lib/probe/host-watch.js';
import { parseNvidiaSmi, parseProbe } from '../../scripts/lib/probe/parse-probe.js';
import { probeHosts, type HostHealth } from '../../scripts/lib/probe/probe-hosts.js';
import { gpuTimeoutSec, probeArgv, PROBE_SCRIPT } from '../../scripts/lib/probe/probe-script.js';
import type { AttemptRecord, RunRecord } from '../../scripts/lib/runs/run-record.js';
import { formatZodIssue } from '../../scripts/lib/spec/zod-format.js';

const RTX = '0, NVIDIA GeForce RTX 4090, GPU-5f3c2a1e-9b7d-4c1a-8e2f-1a2b3c4d5e6f, 87, 20480, 24564, 71, 312.45, [N/A]';
const T4_NO_POWER = '0, Tesla T4, GPU-0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f, 0, 0, 15360, 38, [N/A], [N/A]';
const A100_MIG = '0, NVIDIA A100-SXM4-80GB, GPU-9a8b7c6d-5e4f-3a2b-1c0d-ffeeddccbbaa, [N/A], [Not Supported], 81920, 34, 62.10, Enabled';
const H100S = [0, 1, 2, 3].map((i) => `${i}, NVIDIA H100 80GB HBM3, GPU-0000000${i}-aaaa-bbbb-cccc-dddddddddddd, ${25 * i}, ${1000 * i}, 81559, ${40 + i}, ${100 + i}.5, Disabled`).join('\n');

describe('parseNvidiaSmi', () => {
  it('reads a GPU in use', () => {
    expect(parseNvidiaSmi(`${RTX}\n`)).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 4090', uuid: 'GPU-5f3c2a1e-9b7d-4c1a-8e2f-1a2b3c4d5e6f', utilPct: 87, memUsedMiB: 20480, memTotalMiB: 24564, tempC: 71, powerW: 312.45, mig: false },
    ]);
  });

  it('[N/A] power is null, while a real 0 stays 0', () => {
    const [t4] = parseNvidiaSmi(T4_NO_POWER);
    expect(t4).toMatchObject({ utilPct: 0, memUsedMiB: 0, powerW: null, mig: false });
  });

  it('MIG: [N/A] utilisation and [Not Supported] memory are null, and the GPU is MIG', () => {
    const [a100] = parseNvidiaSmi(A100_MIG);
    expect(a100).toMatchObject({ name: 'NVIDIA A100-SXM4-80GB', utilPct: null, memUsedMiB: null, memTotalMiB: 81920, tempC: 34, powerW: 62.1, mig: true });
  });

  it('reads every GPU of a multi-GPU host, in order', () => {
    const gpus = parseNvidiaSmi(H100S);
    expect(gpus.map((g) => [g.index, g.utilPct, g.memUsedMiB, g.tempC, g.powerW])).toEqual([
      [0, 0, 0, 40, 100.5],
      [1, 25, 1000, 41, 101.5],
      [2, 50, 2000, 42, 102.5],
      [3, 75, 3000, 43, 103.5],
    ]);
  });

  it('keeps a name holding ", " whole (fields are read from both ends)', () => {
    expect(parseNvidiaSmi('1, Acme GPU, Rev. 2, GPU-x, 5, 1, 2, 3, 4, Disabled')[0]).toMatchObject({ index: 1, name: 'Acme GPU, Rev. 2', uuid: 'GPU-x', utilPct: 5 });
  });

  it('an empty field is null, never 0', () => {
    expect(parseNvidiaSmi('0, X, GPU-x, , 1, 2, 3, , Disabled')[0]).toMatchObject({ utilPct: null, powerW: null });
  });

  it('refuses a line that is not a row', () => {
    expect(() => parseNvidiaSmi('Failed to initialize NVML: Driver/library version mismatch')).toThrow(/nvidia-smi printed "Failed to initialize NVML/);
  });
});

/** A probe's output as the script prints it, with the gpu section given. */
function output(gpu: string): string {
  return [
    '@@load', '3.52 2.10 1.75 4/812 123456',
    '@@cpus', '16',
    '@@mem', 'MemTotal:       65843212 kB', 'MemAvailable:   40123456 kB',
    '@@disk', 'Filesystem     1024-blocks      Used Available Capacity Mounted on', '/dev/nvme0n1p2   960302804 400000000 511473952      44% /',
    '@@tmux', 'sy-knn-default-20261130T1200-abcd1234-1', 'scratch',
    '@@gpu', gpu,
  ].join('\n') + '\n';
}

describe('parseProbe', () => {
  it('reads load, cpus, memory, disk and tmux sessions', () => {
    const r = parseProbe(output('@@gpu-exit none'), 5);
    expect(r).toEqual({
      load1: 3.52,
      cpus: 16,
      memTotalBytes: 65843212 * 1024,
      memAvailBytes: 40123456 * 1024,
      diskFreeBytes: 511473952 * 1024,
      diskTotalBytes: 960302804 * 1024,
      tmux: ['sy-knn-default-20261130T1200-abcd1234-1', 'scratch'],
      gpuHealth: 'none',
      gpuError: null,
      gpus: [],
    });
  });

  it('GPUs that answered are ok', () => {
    const r = parseProbe(output(`${H100S}\n@@gpu-exit 0`), 5);
    expect(r.gpuHealth).toBe('ok');
    expect(r.gpus).toHaveLength(4);
  });

  it('a hung nvidia-smi (timeout exits 124) is unhealthy, the rest still read', () => {
    const r = parseProbe(output('@@gpu-exit 124'), 2.5);
    expect(r).toMatchObject({ gpuHealth: 'unhealthy', gpuError: 'nvidia-smi did not answer within 2.5s', gpus: [], load1: 3.52, cpus: 16 });
  });

  it('a failing nvidia-smi is unhealthy with its last line', () => {
    const r = parseProbe(output('NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.\n@@gpu-exit 9'), 5);
    expect(r.gpuHealth).toBe('unhealthy');
    expect(r.gpuError).toBe('nvidia-smi exited 9: NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.');
  });

  it('nvidia-smi exiting 0 with garbage is unhealthy, not zeros', () => {
    const r = parseProbe(output('Unable to determine the device handle for GPU0000:01:00.0: Unknown Error\n@@gpu-exit 0'), 5);
    expect(r).toMatchObject({ gpuHealth: 'unhealthy', gpus: [] });
    expect(r.gpuError).toMatch(/^nvidia-smi printed "Unable to determine/);
  });

  it("reads memory under a container's cgroup limit as that limit, its reclaimable file pages free", () => {
    const mem = (cg: string[]) => parseProbe(output('@@gpu-exit none').replace('MemAvailable:   40123456 kB', ['MemAvailable:   40123456 kB', ...cg].join('\n')), 5);
    const v2 = mem(['cg limit 8589934592', 'cg usage 3221225472', 'cg inactive_file 1073741824']);
    expect([v2.memTotalBytes, v2.memAvailBytes]).toEqual([8 * 2 ** 30, 6 * 2 ** 30]);
    const v1 = mem(['cg limit 8589934592', 'cg usage 3221225472', 'cg inactive_file 1', 'cg total_inactive_file 2147483648']);
    expect([v1.memTotalBytes, v1.memAvailBytes]).toEqual([8 * 2 ** 30, 7 * 2 ** 30]);
    const unlimited = mem(['cg limit 9223372036854771712', 'cg usage 3221225472']);
    expect([unlimited.memTotalBytes, unlimited.memAvailBytes]).toEqual([65843212 * 1024, 40123456 * 1024]);
  });

  it('reads df around its capacity column where the fs name or the mount point holds spaces', () => {
    const r = parseProbe(output('@@gpu-exit none').replace('/dev/nvme0n1p2   960302804 400000000 511473952      44% /', 'scratch disk  65536 0 65536  0% /root/big disk'), 5);
    expect([r.diskTotalBytes, r.diskFreeBytes]).toEqual([65536 * 1024, 65536 * 1024]);
  });

  it('output cut short leaves what did not come null', () => {
    const r = parseProbe('@@load\n0.50 0.40 0.30 1/100 42\n@@cpus\n', 5);
    expect(r).toMatchObject({ load1: 0.5, cpus: null, memTotalBytes: null, diskFreeBytes: null, tmux: [], gpuHealth: 'unhealthy' });
  });
});

/** A probe's output captured on a real machine (test/fixtures/probe/README.md says where). */
function captured(name: string): string {
  return readFileSync(new URL(`../fixtures/probe/${name}.txt`, import.meta.url), 'utf8');
}

describe('parseProbe on a real H200', () => {
  const h200 = { index: 0, name: 'NVIDIA H200', uuid: 'GPU-b1291625-235c-3726-1ce1-9a92dc66d98b', memTotalMiB: 143771, mig: false };

  it('reads it idle: the GPU, and memory from /proc/meminfo under a cgroup limit of "max"', () => {
    const r = parseProbe(captured('h200-idle'), 5);
    expect(r).toMatchObject({ cpus: 16, load1: 0.28, memTotalBytes: 131961976 * 1024, memAvailBytes: 131451684 * 1024, diskFreeBytes: 67083004 * 1024, tmux: [], gpuHealth: 'ok', gpuError: null });
    expect(r.gpus).toEqual([{ ...h200, utilPct: 0, memUsedMiB: 0, tempC: 37, powerW: 80.12 }]);
  });

  it('reads it busy: utilisation, memory held, heat and power all rise', () => {
    const r = parseProbe(captured('h200-load'), 5);
    expect(r.gpuHealth).toBe('ok');
    expect(r.gpus).toEqual([{ ...h200, utilPct: 100, memUsedMiB: 17395, tempC: 54, powerW: 412.53 }]);
  });

  it('reads a deadline nvidia-smi could not meet as unhealthy, the rest of the host still read', () => {
    const r = parseProbe(captured('h200-timeout'), 0.001);
    expect(r).toMatchObject({ cpus: 16, gpuHealth: 'unhealthy', gpuError: 'nvidia-smi did not answer within 0.001s', gpus: [] });
    expect(r.memTotalBytes).toBe(131961976 * 1024);
  });
});

describe('the probe command', () => {
  it('passes the root and the nvidia-smi limit as arguments, never inside the script', () => {
    const argv = probeArgv("it's; rm -rf ~", 2.5);
    expect(argv).toEqual(['sh', '-c', PROBE_SCRIPT, 'sh', "it's; rm -rf ~", '2.5']);
    expect(PROBE_SCRIPT).not.toContain('rm -rf');
  });

  it('gives nvidia-smi half the host deadline, at least 1 s', () => {
    expect([gpuTimeoutSec(10), gpuTimeoutSec(3), gpuTimeoutSec(1)]).toEqual([5, 1.5, 1]);
  });
});

describe('meanUtil', () => {
  const host = (utils: (number | null)[]) => ({ gpus: utils.map((utilPct) => ({ utilPct })) }) as HostHealth;
  it('averages the GPUs that report utilisation; null without any', () => {
    expect(meanUtil(host([20, null, 40]))).toBe(30);
    expect(meanUtil(host([null]))).toBeNull();
    expect(meanUtil(host([]))).toBeNull();
  });
});

describe('runCost', () => {
  const attempt = (host: string | null, started: string, ended: string | null, backend: 'ssh' | 'fleet' | 'local' = 'ssh'): AttemptRecord => ({
    n: 1,
    backend,
    handle: host === null ? null : { backend, host },
    state: ended ? 'succeeded' : 'running',
    reason: null,
    exit_code: null,
    started_at: started,
    ended_at: ended,
    restored_step: null,
    last_step: null,
    events_seen: 0,
  });
  const run = (...attempts: AttemptRecord[][]) => ({ units: attempts.map((a, index) => ({ index, attempts: a, moved_from: [] })) }) as Pick<RunRecord, 'units'>;
  const config = { hosts: { cheap: { price_per_hour: 0.5 }, dear: { price_per_hour: 2 }, free: {} } } as never;

  it('sums each attempt\'s hours on a priced host times its price, across units', () => {
    const r = run(
      [attempt('cheap', '2026-11-30T10:00:00Z', '2026-11-30T12:00:00Z'), attempt('dear', '2026-11-30T12:00:00Z', '2026-11-30T12:30:00Z')],
      [attempt('dear', '2026-11-30T10:00:00Z', '2026-11-30T11:00:00Z', 'fleet'), attempt('free', '2026-11-30T10:00:00Z', '2026-11-30T20:00:00Z')],
    );
    expect(runCost(r, config)).toBeCloseTo(2 * 0.5 + 0.5 * 2 + 1 * 2, 9);
  });

  it('prices a running attempt up to now', () => {
    const now = Date.parse('2026-11-30T13:00:00Z');
    expect(runCost(run([attempt('dear', '2026-11-30T10:00:00Z', null)]), config, now)).toBeCloseTo(6, 9);
  });

  it('is null when nothing ran on a priced host', () => {
    expect(runCost(run([attempt('free', '2026-11-30T10:00:00Z', '2026-11-30T11:00:00Z'), attempt(null, '2026-11-30T10:00:00Z', null)]), config)).toBeNull();
    expect(runCost(run([attempt('cheap', '2026-11-30T10:00:00Z', '2026-11-30T11:00:00Z', 'local')]), config)).toBeNull();
    expect(runCost(run(), config)).toBeNull();
  });

  it('a price of 0 is a cost of 0, not null', () => {
    expect(runCost(run([attempt('zero', '2026-11-30T10:00:00Z', '2026-11-30T11:00:00Z')]), { hosts: { zero: { price_per_hour: 0 } } } as never)).toBe(0);
  });
});

describe('price_per_hour in cluster_fleet_config.ts', () => {
  const check = (value: unknown) => {
    const raw = { hosts: { h1: { host: 'box.example.com', price_per_hour: value } } };
    const parsed = ConfigSchema.safeParse(raw);
    return parsed.success ? parsed.data.hosts.h1!.price_per_hour : formatZodIssue('cluster_fleet_config.ts', parsed.error, ConfigSchema, raw);
  };

  it('takes a number of dollars of 0 or more, and is absent by default', () => {
    expect(check(1.25)).toBe(1.25);
    expect(check(0)).toBe(0);
    expect(ConfigSchema.parse({ hosts: { h1: { host: 'b' } } }).hosts.h1!.price_per_hour).toBeUndefined();
  });

  it('refuses a negative price, a string or infinity in one line naming the field', () => {
    expect(check(-1)).toBe('cluster_fleet_config.ts: hosts.h1.price_per_hour: US dollars an hour, at least 0, e.g. 1.25');
    expect(check('1.25')).toBe('cluster_fleet_config.ts: hosts.h1.price_per_hour: expected a number, e.g. 1.25');
    expect(check(Infinity)).toBe('cluster_fleet_config.ts: hosts.h1.price_per_hour: expected a number, e.g. 1.25');
  });
});

describe('make hosts table', () => {
  const id = { host: 'h1', address: 'root@10.0.0.1:22', fleets: ['lab'], pricePerHour: 1.5 };
  const up: HostHealth = {
    ...id,
    state: 'up',
    error: null,
    latencyMs: 12,
    probedAt: '2026-11-30T12:00:00.000Z',
    ...parseProbe(output(`${RTX}\n${A100_MIG.replace(/^0/, '1')}\n@@gpu-exit 0`), 5),
  };
  const col = (row: string[], name: string) => row[HOST_HEADERS.indexOf(name)];

  it('one row per host, one more per further GPU; MIG and nulls shown as such', () => {
    const [first, second, ...rest] = hostRows([up]);
    expect(rest).toEqual([]);
    expect([col(first!, 'HOST'), col(first!, 'STATE'), col(first!, 'LOAD'), col(first!, 'GPU'), col(first!, 'UTIL'), col(first!, 'GPU MEM'), col(first!, 'TEMP'), col(first!, 'POWER'), col(first!, '$/H')])
      .toEqual(['h1', 'up 12 ms', '3.52/16', '0 GeForce RTX 4090', '87%', '20/24 GiB', '71°C', '312 W', '1.50']);
    expect([col(second!, 'HOST'), col(second!, 'GPU'), col(second!, 'UTIL'), col(second!, 'GPU MEM'), col(second!, 'POWER')]).toEqual(['', '1 A100-SXM4-80GB MIG', '-', '-/80 GiB', '62 W']);
  });

  it('an unhealthy GPU, a down host and a host still being asked', () => {
    const sick = { ...up, gpus: [], gpuHealth: 'unhealthy' as const, gpuError: 'nvidia-smi did not answer within 5s' };
    const down = { ...up, host: 'h2', state: 'down' as const, error: 'connection refused', gpus: [], gpuHealth: 'unknown' as const };
    const rows = hostRows([sick, down, { ...id, host: 'h3', pricePerHour: null }]);
    expect(col(rows[0]!, 'GPU')).toBe('unhealthy: nvidia-smi did not answer within 5s');
    expect([col(rows[1]!, 'HOST'), col(rows[1]!, 'STATE'), col(rows[1]!, 'GPU')]).toEqual(['h2', 'down: connection refused', '']);
    expect([col(rows[2]!, 'HOST'), col(rows[2]!, 'STATE'), col(rows[2]!, '$/H')]).toEqual(['h3', 'asking…', '-']);
  });
});

describe('host names', () => {
  const project = { config: ConfigSchema.parse({ hosts: { h1: { host: 'a' }, h2: { host: 'b' } } }) };
  it('probeHosts and HostWatch refuse a name not in the inventory in one line, before connecting', async () => {
    const line = 'host: unknown host "h9" (known: h1, h2); add it under hosts in cluster_fleet_config.ts';
    await expect(probeHosts(project, ['h1', 'h9'])).rejects.toThrow(line);
    expect(() => new HostWatch(project, { hosts: ['h9'] })).toThrow(line);
  });
});
