// One ssh probe per inventory host, shared by every check that needs the host (its own rows, its
// fleets', a cluster whose login it is): the identity file, whether sshd answers, whether its host
// key is the one known_hosts holds (a wrong key reads as such, never as "unreachable"), and the
// tools bootstrap would install. The connection stays open for the cluster checks until `close`.
import { readFileSync } from 'node:fs';
import type { Client } from 'ssh2';
import type { Config, HostEntry } from '../config/load-config.js';
import { HOST_TOOLS } from '../remote/bootstrap.js';
import { collectExec, openExecChannel, type ExecResult } from '../ssh/channel.js';
import { openConnection } from '../ssh/connect.js';
import { entriesFor, parseKnownHosts } from '../ssh/known-hosts.js';
import { describeTarget, SshError } from '../ssh/ssh-errors.js';
import { targetFromConfig, type SshTarget } from '../ssh/target.js';
import { shellQuote } from '../quote.js';
import { fail, pass, skip, splitFix, type Check, type Finding } from './row.js';
import { withTimeout } from './runner.js';

/** Past the connect timeout: the tools look over the open connection. */
const EXEC_MS = 3_000;

export interface HostProbe {
  name: string;
  target: SshTarget;
  findings: Finding[];
  /** runs a fixed sh script there; null when the host could not be reached */
  sh: ((script: string, args: readonly string[]) => Promise<ExecResult>) | null;
  /** why it is not usable, for the rows of fleets and clusters that need it */
  problem: string | null;
}

/** The probe's own limit: connect, then one command. */
export const probeTimeoutMs = (entry: HostEntry) => entry.connect_timeout * 1000 + 1000 + EXEC_MS;

function identityFinding(t: SshTarget, authFailed: boolean): Finding {
  if (!t.identityFile) {
    if (!process.env.SSH_AUTH_SOCK) return fail('ssh key', 'no identity_file and no ssh-agent', `set identity_file for hosts.${t.name} in cluster_fleet_config.ts, or start ssh-agent and ssh-add your key`);
    return authFailed ? fail('ssh key', 'the ssh-agent keys were refused', `add your public key to the host's authorized_keys (ssh-copy-id -p ${t.port} ${t.user ? `${t.user}@` : ''}${t.host})`) : pass('ssh key', 'ssh-agent');
  }
  try {
    readFileSync(t.identityFile);
  } catch (err) {
    return fail('ssh key', `cannot read ${t.identityFile} (${(err as NodeJS.ErrnoException).code})`, `create it (ssh-keygen -t ed25519 -f ${t.identityFile}) or fix identity_file for hosts.${t.name}`);
  }
  if (authFailed) {
    return fail('ssh key', `${t.identityFile} refused by the host`, `add ${t.identityFile}.pub to the host's authorized_keys: ${shellQuote(['ssh-copy-id', '-i', t.identityFile, '-p', String(t.port), `${t.user ? `${t.user}@` : ''}${t.host}`])}`);
  }
  return pass('ssh key', t.identityFile);
}

/** What known_hosts says before anything is sent: enough for the row of a host that does not answer. */
function knownHostsEntry(t: SshTarget): string | null {
  try {
    const found = entriesFor(parseKnownHosts(readFileSync(t.knownHosts, 'utf8')), t.host, t.port).filter((e) => !e.marker);
    return found.length ? found.map((e) => e.keyType).join(', ') : null;
  } catch {
    return null;
  }
}

const untried = (row: string) => skip(row, 'not tried without a usable key');

function unreachableFix(t: SshTarget): string {
  return `start sshd on ${t.host} (or bring the box up), or fix host/port of hosts.${t.name} in cluster_fleet_config.ts; then make doctor host=${t.name}`;
}

async function probe(name: string, entry: HostEntry, onClient: (c: Client) => void): Promise<HostProbe> {
  const target = targetFromConfig(name, entry, { connectTimeoutSec: entry.connect_timeout });
  const where = `${describeTarget(target)}: `;
  const trim = (message: string) => (message.startsWith(where) ? message.slice(where.length) : message);
  const key = identityFinding(target, false);
  if (key.ok !== true) {
    return { name, target, findings: [key, untried('reachable'), untried('known_hosts'), untried('tools')], sh: null, problem: `${name}: no usable ssh key` };
  }
  let client: Client;
  const t0 = performance.now();
  try {
    client = await openConnection(target, { keepaliveIntervalMs: 5_000, keepaliveCountMax: 2 });
  } catch (err) {
    if (!(err instanceof SshError)) throw err;
    const { detail, fix } = splitFix(trim(err.message));
    const rows: Finding[] = [];
    let problem = `${name}: ${detail}`;
    if (err.kind === 'host-key') {
      rows.push(key, pass('reachable', `sshd answers at ${target.host}:${target.port}`), fail('known_hosts', detail, fix));
      problem = `${name}: host key not trusted`;
    } else if (err.kind === 'identity') {
      // readable, but ssh2 cannot use it (a passphrase, an unknown format): nothing was sent
      rows.push(fail('ssh key', detail, `use a key without a passphrase for identity_file of hosts.${name}, or load it into ssh-agent (ssh-add) and drop identity_file`), untried('reachable'), untried('known_hosts'));
      problem = `${name}: no usable ssh key`;
    } else if (err.kind === 'auth') {
      // the key was readable (checked above): the host refused it
      rows.push(identityFinding(target, true), pass('reachable', `sshd answers at ${target.host}:${target.port}`), pass('known_hosts', `host key matches ${target.knownHosts}`));
    } else {
      const known = knownHostsEntry(target);
      rows.push(
        key,
        fail('reachable', detail, unreachableFix(target)),
        known ? skip('known_hosts', `${target.knownHosts} has a ${known} key for it; not compared (no answer)`) : fail('known_hosts', `no key for ${target.host}:${target.port} in ${target.knownHosts}`, `once it is up: ssh-keyscan -p ${target.port} ${target.host} >> ${target.knownHosts} (after verifying the key)`),
      );
    }
    rows.push(skip('tools', 'not checked'));
    return { name, target, findings: rows, sh: null, problem };
  }
  onClient(client);
  const ms = Math.round(performance.now() - t0);
  const sh = async (script: string, args: readonly string[]) => collectExec(await openExecChannel(client, shellQuote(['sh', '-c', script, 'sh', ...args]), EXEC_MS));
  const missing = await sh('for t in "$@"; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done', HOST_TOOLS).then(
    (r) => r.stdout.split('\n').filter(Boolean),
    () => null,
  );
  const tools =
    missing === null ? fail('tools', 'no answer to a command', `make doctor host=${name} again; if it persists, make ssh host=${name}`)
    : missing.length ? fail('tools', `missing ${missing.join(', ')}`, `make bootstrap host=${name} (installs them)`)
    : pass('tools', HOST_TOOLS.join(', '));
  return {
    name,
    target,
    findings: [key, pass('reachable', `ssh in ${ms} ms`), pass('known_hosts', `host key matches ${target.knownHosts}`), tools],
    sh,
    problem: null,
  };
}

/** Probes hosts on first use, each once, each under probeTimeoutMs; `close` ends their connections. */
export class HostProbes {
  private readonly probes = new Map<string, Promise<HostProbe>>();
  private readonly clients: Client[] = [];

  constructor(private readonly config: Config) {}

  get(name: string): Promise<HostProbe> {
    let p = this.probes.get(name);
    if (!p) {
      const entry = this.config.hosts[name]!;
      const ms = probeTimeoutMs(entry);
      const target = targetFromConfig(name, entry, { connectTimeoutSec: entry.connect_timeout });
      p = withTimeout(probe(name, entry, (c) => this.clients.push(c)), ms, () => ({
        name,
        target,
        findings: [fail('reachable', `no answer within ${ms / 1000}s`, unreachableFix(target))],
        sh: null,
        problem: `${name}: no answer`,
      }));
      this.probes.set(name, p);
    }
    return p;
  }

  close(): void {
    for (const c of this.clients) c.destroy();
  }
}

/** Its rows, under its group. */
export function hostCheck(probes: HostProbes, name: string, entry: HostEntry): Check {
  return { group: `host ${name}`, name: 'reachable', required: true, timeoutMs: probeTimeoutMs(entry) + 500, run: async () => (await probes.get(name)).findings };
}

/**
 * A fleet works while one of its hosts does (a lost host's shards move to the others), so its row
 * is ✗ only when none can be used; the broken ones are named, each with its own rows above.
 */
export function fleetCheck(probes: HostProbes, config: Config, fleet: string): Check {
  const { hosts } = config.fleets[fleet]!;
  const timeoutMs = Math.max(...hosts.map((h) => probeTimeoutMs(config.hosts[h]!))) + 500;
  return {
    group: `fleet ${fleet}`,
    name: 'hosts',
    required: true,
    timeoutMs,
    run: async () => {
      const probed = await Promise.all(hosts.map((h) => probes.get(h)));
      const bad = probed.filter((p) => p.problem).map((p) => p.name);
      const ready = `${hosts.length - bad.length} of ${hosts.length} hosts ready`;
      if (!bad.length) return [pass('hosts', `${ready} (${hosts.join(', ')})`)];
      const notReady = `${bad.join(', ')} not (see ${bad.length === 1 ? 'its rows' : 'their rows'})`;
      if (bad.length < hosts.length) return [pass('hosts', `${ready}; ${notReady}: their shards go to the others`)];
      return [fail('hosts', `no host ready: ${notReady}`, `fix the host rows, then make bootstrap fleet=${fleet}`)];
    },
  };
}
