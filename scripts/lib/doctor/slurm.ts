// Each SLURM cluster: its login node (this machine, or an inventory host reached through its
// probe) has sbatch, and the controller answers (sinfo lists the partitions, the configured one
// among them); the row also says how many units one job array takes there (MaxArraySize).
import type { ClusterEntry } from '../config/cluster-config.js';
import { CONFIG_FILE, type Config } from '../config/load-config.js';
import { run } from '../proc.js';
import { maxArrayTasks } from '../slurm/scripts.js';
import { probeTimeoutMs, type HostProbes } from './hosts.js';
import { fail, pass, skip, type Check, type Finding } from './row.js';

const SINFO_SEC = 8;
/** scontrol's answer is optional: a slow one is left out rather than failing the row */
const SCONTROL_SEC = 3;
const TIMEOUT_MS = (SINFO_SEC + SCONTROL_SEC + 4) * 1000;

// 127: no sbatch; 3: the controller did not answer (sinfo's own words on stdout). Then the
// MaxArraySize line of the cluster's config, when scontrol gives one in time.
const SCRIPT = `p=$(command -v sbatch) || exit 127
echo "$p"
if command -v timeout >/dev/null 2>&1; then t="timeout $1" c="timeout $2"; else t="" c=""; fi
$t sinfo --noheader --format=%R 2>&1 || exit 3
$c scontrol show config 2>/dev/null | grep '^MaxArraySize' || :`;

type Sh = (script: string, args: readonly string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

const localSh: Sh = async (script, args) => {
  const r = await run(['sh', '-c', script, 'sh', ...args], { allowFail: true, timeout: TIMEOUT_MS - 1000 });
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
};

/** The sbatch row from the script's answer (pure: what the tests feed it). */
export function sbatchFinding(cluster: string, entry: Pick<ClusterEntry, 'login' | 'partition'>, r: { code: number; stdout: string }): Finding {
  const where = entry.login === 'local' ? 'this machine' : entry.login;
  const lines = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  if (r.code === 127) {
    return fail('sbatch', `not on the PATH of ${where}`, entry.login === 'local' ? `install the SLURM client here (apt-get install -y slurm-client), or set clusters.${cluster}.login in ${CONFIG_FILE} to a host that has it` : `install the SLURM client on ${where}, or put it on the PATH of its non-interactive shell`);
  }
  if (r.code !== 0) {
    return fail('sbatch', `${lines[0] ?? 'sbatch'} found, but the controller does not answer: ${lines.at(-1) ?? `sinfo exited ${r.code}`}`, `check slurmctld and SLURM_CONF on ${where} (sinfo there says why)`);
  }
  const [sbatch, ...rest] = lines;
  const partitions = rest.filter((l) => !l.startsWith('MaxArraySize'));
  if (entry.partition && !partitions.includes(entry.partition)) {
    return fail('sbatch', `partition ${entry.partition} not found (the cluster has ${partitions.join(', ') || 'none'})`, `set clusters.${cluster}.partition in ${CONFIG_FILE} to one of them`);
  }
  const tasks = maxArrayTasks(r.stdout);
  const arrays = tasks === null ? '' : tasks === 1 ? '; job arrays off (MaxArraySize): a job a unit' : `; job arrays of at most ${tasks} units (MaxArraySize)`;
  return pass('sbatch', `${sbatch}; partitions ${partitions.join(', ') || 'none'}${arrays}`);
}

export function clusterCheck(probes: HostProbes, config: Config, cluster: string): Check {
  const entry = config.clusters[cluster]!;
  const viaSsh = entry.login !== 'local';
  return {
    group: `cluster ${cluster}`,
    name: 'sbatch',
    required: true,
    timeoutMs: TIMEOUT_MS + (viaSsh ? probeTimeoutMs(config.hosts[entry.login]!) : 0),
    run: async () => {
      let sh: Sh = localSh;
      const login: Finding[] = [pass('login', viaSsh ? `${entry.login} (see its rows)` : 'this machine')];
      if (viaSsh) {
        const probe = await probes.get(entry.login);
        if (!probe.sh) return [skip('login', `${probe.problem} (see its rows)`), skip('sbatch', 'login node not reachable')];
        sh = probe.sh;
      }
      return [...login, sbatchFinding(cluster, entry, await sh(SCRIPT, [String(SINFO_SEC), String(SCONTROL_SEC)]))];
    },
  };
}
