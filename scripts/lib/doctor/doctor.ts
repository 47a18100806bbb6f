// `make doctor`: every dependency and remote the inventory names, probed at once, as one table.
// A configured host, fleet, cluster or Batch entry is required; Kaggle only when a competition
// names one; a required ✗ fails the doctor.
import { entryNamed } from '../config/entry-named.js';
import { CONFIG_FILE, loadConfig, type Config } from '../config/load-config.js';
import { UserError } from '../ui/errors.js';
import { plural } from '../ui/plural.js';
import { batchCheck } from './batch.js';
import { envFileCheck } from './env-file.js';
import { fleetCheck, hostCheck, HostProbes } from './hosts.js';
import { kaggleCheck } from './kaggle.js';
import { broken, type Check, type Row } from './row.js';
import { LEGEND, renderRows, runChecks } from './runner.js';
import { clusterCheck } from './slurm.js';
import { storeCheck } from './store.js';
import { toolChecks } from './tools.js';

export interface DoctorOptions {
  /** only this inventory host's rows */
  host?: string;
}

function allChecks(root: string, config: Config, probes: HostProbes): Check[] {
  const remote = Object.keys(config.hosts).length > 0;
  return [
    ...toolChecks({ remote }),
    envFileCheck(root),
    storeCheck(root, config),
    ...Object.entries(config.hosts).map(([name, entry]) => hostCheck(probes, name, entry)),
    ...Object.keys(config.fleets).map((fleet) => fleetCheck(probes, config, fleet)),
    ...Object.keys(config.clusters).map((cluster) => clusterCheck(probes, config, cluster)),
    ...(Object.keys(config.batch).length ? [batchCheck(root, config)] : []),
    kaggleCheck(root),
  ];
}

/** The rows; a config that does not load is its own ✗ row, with the checks that need no config. */
export async function doctorRows(root: string, opts: DoctorOptions = {}): Promise<Row[]> {
  return (await doctorChecks(root, opts)).rows;
}

/** The rows, and the longest limit of one check: the doctor ends within it (the checks run at once). */
export async function doctorChecks(root: string, opts: DoctorOptions = {}): Promise<{ rows: Row[]; longestTimeoutMs: number }> {
  const measured = async (checks: Check[]) => ({ rows: await runChecks(checks), longestTimeoutMs: Math.max(...checks.map((c) => c.timeoutMs)) });
  let config: Config;
  try {
    config = await loadConfig(root);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const bad: Row = { group: 'config', name: CONFIG_FILE, ok: false, detail: err.message.replace(`${CONFIG_FILE}: `, ''), fix: `fix ${CONFIG_FILE} as the message says (make init writes a fresh one)`, required: true, ms: 0 };
    const rest = await measured([...toolChecks({ remote: false }), envFileCheck(root)]);
    return { ...rest, rows: [bad, ...rest.rows] };
  }
  const probes = new HostProbes(config);
  try {
    if (opts.host) {
      const name = entryNamed(config, 'hosts', opts.host);
      return await measured([hostCheck(probes, name, config.hosts[name]!)]);
    }
    return await measured(allChecks(root, config, probes));
  } finally {
    probes.close();
  }
}

/** Prints the table and a summary line; returns how many required rows failed. */
export async function runDoctor(root: string, opts: DoctorOptions, write: (text: string) => void): Promise<number> {
  const t0 = performance.now();
  const rows = await doctorRows(root, opts);
  write(`${renderRows(rows)}\n${LEGEND}\n`);
  const failed = broken(rows);
  const optional = rows.filter((r) => r.ok === false && !r.required);
  const took = `${Math.round(performance.now() - t0)} ms`;
  const extra = optional.length ? `; ${plural(optional.length, 'check')} marked ! not needed now (${optional.map((r) => `${r.group} ${r.name}`).join(', ')})` : '';
  if (!failed.length) write(`doctor: ${plural(rows.filter((r) => r.ok === true).length, 'check')} passed in ${took}${extra}\n`);
  else write(`doctor: ${plural(failed.length, 'needed check')} failed in ${took} (rows marked ✗)${extra}; fix them and run make doctor again\n`);
  return failed.length;
}
