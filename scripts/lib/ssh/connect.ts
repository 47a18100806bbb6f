// Opens one ssh2 connection to a target: identity file or ssh-agent, host key checked against
// the target's known_hosts (never accepted when unknown or changed), everything within the
// target's connect timeout. ssh2 is imported lazily to keep it off the local start-up path.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Client, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { checkHostKey, fingerprint, keyTypeOfBlob, knownKeyTypes } from './known-hosts.js';
import { SshError, connectError, describeTarget, hostKeyError } from './ssh-errors.js';
import type { SshTarget } from './target.js';

export interface ConnectOptions {
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  /** the ssh-agent socket used when the target has no identity file; default $SSH_AUTH_SOCK */
  agentSocket?: string;
  /** abandons the attempt (SshPool.close) */
  signal?: AbortSignal;
}

/** ssh2's host key algorithms, best first. */
const HOST_KEY_ALGOS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Algorithms for the key types known_hosts already holds come first, as OpenSSH orders them. */
export function hostKeyAlgorithms(knownTypes: readonly string[]): ServerHostKeyAlgorithm[] {
  const preferred = knownTypes.flatMap((t): ServerHostKeyAlgorithm[] =>
    t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : HOST_KEY_ALGOS.filter((a) => a === t),
  );
  return [...new Set([...preferred, ...HOST_KEY_ALGOS])];
}

async function credentials(target: SshTarget, agentSocket: string | undefined): Promise<Partial<ConnectConfig>> {
  if (target.identityFile) {
    try {
      return { privateKey: await readFile(target.identityFile) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new SshError(target.name, 'identity', `${describeTarget(target)}: cannot read identity file ${target.identityFile} (${code})`);
    }
  }
  if (agentSocket) return { agent: agentSocket };
  throw new SshError(target.name, 'auth', `${describeTarget(target)}: no identity_file configured and no ssh-agent (SSH_AUTH_SOCK is unset); set identity_file for this host or start ssh-agent`);
}

async function connectConfig(target: SshTarget, opts: ConnectOptions): Promise<ConnectConfig> {
  return {
    host: target.host,
    port: target.port,
    username: target.user ?? os.userInfo().username,
    readyTimeout: target.connectTimeoutSec * 1000,
    keepaliveInterval: opts.keepaliveIntervalMs,
    keepaliveCountMax: opts.keepaliveCountMax,
    algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(target.knownHosts, target.host, target.port)) },
    ...(await credentials(target, opts.agentSocket ?? process.env.SSH_AUTH_SOCK)),
  };
}

/** A host verifier that records why it refused, so the refusal surfaces as its own message. */
function verifier(target: SshTarget, refuse: (err: SshError) => void) {
  return (key: Buffer): boolean => {
    const type = keyTypeOfBlob(key);
    try {
      const status = checkHostKey(target.knownHosts, target.host, target.port, type, key.toString('base64'));
      if (status === 'match') return true;
      refuse(hostKeyError(target, status, type, fingerprint(key)));
    } catch (err) {
      refuse(new SshError(target.name, 'host-key', `${describeTarget(target)}: cannot read ${target.knownHosts}: ${(err as Error).message}`));
    }
    return false;
  };
}

/** Resolves with a ready client, or rejects with one SshError within the connect timeout. */
export async function openConnection(target: SshTarget, opts: ConnectOptions): Promise<Client> {
  const config = await connectConfig(target, opts);
  const { default: ssh2 } = await import('ssh2');
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let refusal: SshError | undefined;
    let settled = false;
    let guard: NodeJS.Timeout | undefined;
    const fail = (err: SshError) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      opts.signal?.removeEventListener('abort', abandon);
      client.destroy();
      reject(err);
    };
    const abandon = () => fail(new SshError(target.name, 'connect', `${describeTarget(target)}: connection abandoned (the pool was closed)`));
    if (opts.signal?.aborted) return abandon();
    opts.signal?.addEventListener('abort', abandon);
    // ssh2's readyTimeout covers TCP connect, handshake and auth; this guard only backs it up.
    const timedOut = Object.assign(new Error('timed out'), { level: 'client-timeout' });
    guard = setTimeout(() => fail(connectError(target, timedOut)), target.connectTimeoutSec * 1000 + 1000);
    client.on('error', (err: Error & { level?: string }) => fail(refusal ?? connectError(target, err)));
    client.on('close', () => fail(refusal ?? new SshError(target.name, 'connect', `${describeTarget(target)}: connection closed during the handshake`)));
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      opts.signal?.removeEventListener('abort', abandon);
      // Calls are small request/answer exchanges: Nagle's algorithm would hold a request back
      // until the last answer's ACK, which the far end delays by up to 40 ms.
      client.setNoDelay(true);
      resolve(client);
    });
    try {
      client.connect({ ...config, hostVerifier: verifier(target, (err) => (refusal = err)) });
    } catch (err) {
      fail(new SshError(target.name, 'identity', `${describeTarget(target)}: cannot use identity file ${target.identityFile}: ${(err as Error).message}`));
    }
  });
}
