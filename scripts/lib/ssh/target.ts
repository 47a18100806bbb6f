// One SSH destination, resolved from a `hosts` entry of cluster_fleet_config.ts, and the system
// `ssh` argv for it: batch mode, strict host-key checking against one known_hosts file, timeouts.
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../ui/errors.js';
import { checkHostName, checkUserName, shellQuote } from '../quote.js';

export interface SshTarget {
  /** the inventory name (`hosts.<name>`), used in every message */
  name: string;
  host: string;
  port: number;
  user?: string;
  identityFile?: string;
  /** the one known_hosts file host keys are checked against */
  knownHosts: string;
  connectTimeoutSec: number;
}

/** The fields of a `hosts` entry that matter here (HostConfig or the parsed config's host). */
export interface SshHostFields {
  host: string;
  port?: number;
  user?: string;
  identity_file?: string;
  /** per-host known_hosts file, if the inventory carries one */
  known_hosts?: string;
}

export interface TargetOptions {
  /** known_hosts override for this host; beats the host entry and SWITCHYARD_KNOWN_HOSTS */
  knownHosts?: string;
  connectTimeoutSec?: number;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

export const DEFAULT_CONNECT_TIMEOUT_SEC = 10;
export const SERVER_ALIVE_INTERVAL_SEC = 15;
export const SERVER_ALIVE_COUNT_MAX = 3;

function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  return p.startsWith('~/') ? path.join(home, p.slice(2)) : path.resolve(p);
}

/** Resolves a host entry; known_hosts: opts.knownHosts > entry.known_hosts > $SWITCHYARD_KNOWN_HOSTS > ~/.ssh/known_hosts. */
export function targetFromConfig(name: string, hostConfig: SshHostFields, opts: TargetOptions = {}): SshTarget {
  const env = opts.env ?? process.env;
  const home = opts.home ?? os.homedir();
  checkHostName(hostConfig.host);
  if (hostConfig.user !== undefined) checkUserName(hostConfig.user);
  const knownHosts =
    opts.knownHosts ?? hostConfig.known_hosts ?? (env.SWITCHYARD_KNOWN_HOSTS || path.join(home, '.ssh', 'known_hosts'));
  const timeout = opts.connectTimeoutSec ?? DEFAULT_CONNECT_TIMEOUT_SEC;
  if (!(timeout > 0)) throw new UserError(`ssh ${name}: connect timeout must be a positive number of seconds, not ${timeout}`);
  return {
    name,
    host: hostConfig.host,
    port: hostConfig.port ?? 22,
    ...(hostConfig.user !== undefined ? { user: hostConfig.user } : {}),
    ...(hostConfig.identity_file ? { identityFile: expandHome(hostConfig.identity_file, home) } : {}),
    knownHosts: expandHome(knownHosts, home),
    connectTimeoutSec: timeout,
  };
}

/** ssh reads whitespace, quotes and `%` tokens inside -o values and -i paths: refuse such paths. */
function checkSshPath(target: SshTarget, what: string, p: string): string {
  if (/[\s"'%\\]/.test(p)) {
    throw new UserError(`ssh ${target.name}: ${what} ${JSON.stringify(p)} has a space, quote, "%" or "\\", which ssh misreads; move or link it to a plain path`);
  }
  return p;
}

/** The options for the system `ssh` (no program name, no destination). */
export function sshOptions(target: SshTarget): string[] {
  const opts = [
    '-o', 'BatchMode=yes',
    '-o', `ConnectTimeout=${Math.ceil(target.connectTimeoutSec)}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${checkSshPath(target, 'known_hosts file', target.knownHosts)}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', `ServerAliveInterval=${SERVER_ALIVE_INTERVAL_SEC}`,
    '-o', `ServerAliveCountMax=${SERVER_ALIVE_COUNT_MAX}`,
  ];
  if (target.identityFile) {
    opts.push('-o', 'IdentitiesOnly=yes', '-i', checkSshPath(target, 'identity file', target.identityFile));
  }
  opts.push('-p', String(target.port));
  return opts;
}

/** `user@host` or `host`, validated. */
export function sshDestination(target: SshTarget): string {
  checkHostName(target.host);
  return target.user ? `${checkUserName(target.user)}@${target.host}` : target.host;
}

/** The full `ssh` argv; the remote command travels as ONE shell-quoted string. */
export function sshArgv(target: SshTarget, remoteArgv?: readonly string[]): string[] {
  const argv = ['ssh', ...sshOptions(target), '--', sshDestination(target)];
  if (remoteArgv && remoteArgv.length > 0) argv.push(shellQuote(remoteArgv));
  return argv;
}
