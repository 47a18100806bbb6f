// One-line, actionable UserErrors for SSH failures, shared by the ssh2 pool and system ssh/rsync:
// each names the inventory host and says what happened and what to do.
import { UserError } from '../ui/errors.js';
import type { HostKeyStatus } from './known-hosts.js';
import { knownHostsName } from './known-hosts.js';
import { quoteWord, shellQuote } from '../quote.js';
import type { SshTarget } from './target.js';

/** `ssh h1 (root@10.0.0.1:22)` — the inventory name and where it points. */
export function describeTarget(t: SshTarget): string {
  return `ssh ${t.name} (${t.user ? `${t.user}@` : ''}${t.host}:${t.port})`;
}

export class SshError extends UserError {
  constructor(
    readonly target: string,
    readonly kind: 'host-key' | 'connect' | 'auth' | 'timeout' | 'lost' | 'identity',
    message: string,
  ) {
    super(message);
    this.name = 'SshError';
  }
}

function keyscanCommand(t: SshTarget): string {
  return `${shellQuote(['ssh-keyscan', '-p', String(t.port), t.host])} >> ${quoteWord(t.knownHosts)}`;
}

/** Unknown, changed or revoked host key: never accepted, and the message says how to fix it. */
export function hostKeyError(t: SshTarget, status: Exclude<HostKeyStatus, 'match'>, keyType: string, fp: string): SshError {
  const where = describeTarget(t);
  const presented = `the ${keyType} key ${fp}`;
  if (status === 'unknown') {
    return new SshError(t.name, 'host-key',
      `${where}: host key is not in ${t.knownHosts} (server offered ${presented}); verify it and add it with: ${keyscanCommand(t)}`);
  }
  const remove = shellQuote(['ssh-keygen', '-R', knownHostsName(t.host, t.port), '-f', t.knownHosts]);
  if (status === 'revoked') {
    return new SshError(t.name, 'host-key', `${where}: server offered ${presented}, which ${t.knownHosts} marks @revoked; refusing to connect`);
  }
  return new SshError(t.name, 'host-key',
    `${where}: HOST KEY CHANGED (possible man-in-the-middle): server offered ${presented}, which does not match ${t.knownHosts}; ` +
      `if the change is expected, remove the old key with ${remove} and add the new one with: ${keyscanCommand(t)}`);
}

const ERRNO_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is sshd running and listening on that port?)',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'cannot resolve the host name',
  EAI_AGAIN: 'cannot resolve the host name (DNS lookup failed)',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection closed by the server',
};

/** Maps an ssh2 / socket error raised while connecting to a one-line SshError. */
export function connectError(t: SshTarget, err: Error & { code?: string; level?: string }): SshError {
  const where = describeTarget(t);
  const cause = err.code ? ERRNO_CAUSES[err.code] : undefined;
  if (cause) return new SshError(t.name, 'connect', `${where}: ${cause}`);
  if (err.level === 'client-timeout' || /timed out/i.test(err.message)) {
    return new SshError(t.name, 'timeout', `${where}: no answer within the ${t.connectTimeoutSec}s connect timeout (host down or unreachable?)`);
  }
  if (err.level === 'client-authentication') {
    const how = t.identityFile ? `the key ${t.identityFile}` : 'the keys of the ssh-agent at SSH_AUTH_SOCK';
    return new SshError(t.name, 'auth', `${where}: authentication failed with ${how}; check the user and that the public key is in the host's authorized_keys`);
  }
  return new SshError(t.name, 'connect', `${where}: ${err.message.split('\n')[0]}`);
}

/** Reads the system ssh's stderr (from ssh or rsync -e ssh) for a known failure. */
export function sshStderrError(t: SshTarget, stderr: string): SshError | undefined {
  const where = describeTarget(t);
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(stderr)) {
    return new SshError(t.name, 'host-key', `${where}: HOST KEY CHANGED (possible man-in-the-middle); the key does not match ${t.knownHosts}; ` +
      `if the change is expected, remove the old key with ${shellQuote(['ssh-keygen', '-R', knownHostsName(t.host, t.port), '-f', t.knownHosts])} and add the new one with: ${keyscanCommand(t)}`);
  }
  if (/Host key verification failed|No \S+ host key is known/.test(stderr)) {
    return new SshError(t.name, 'host-key', `${where}: host key is not in ${t.knownHosts}; verify it and add it with: ${keyscanCommand(t)}`);
  }
  if (/Permission denied \(/.test(stderr)) return connectError(t, Object.assign(new Error(''), { level: 'client-authentication' }));
  if (/Connection refused/.test(stderr)) return connectError(t, Object.assign(new Error(''), { code: 'ECONNREFUSED' }));
  if (/Connection timed out|Operation timed out/.test(stderr)) return connectError(t, Object.assign(new Error('timed out'), { level: 'client-timeout' }));
  if (/Could not resolve hostname/.test(stderr)) return connectError(t, Object.assign(new Error(''), { code: 'ENOTFOUND' }));
  return undefined;
}
