// OpenSSH known_hosts: plain and wildcard host lists, `[host]:port` for ports other than 22,
// hashed `|1|salt|hash` names (HMAC-SHA1), `!negated` patterns, `@revoked` keys (refused) and
// `@cert-authority` lines (skipped: host certificates are not used here).
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type HostKeyStatus = 'match' | 'unknown' | 'changed' | 'revoked';

export interface KnownHostEntry {
  marker?: 'revoked' | 'cert-authority';
  /** the host field as written: comma-separated patterns, or one `|1|salt|hash` */
  hosts: string;
  keyType: string;
  keyBase64: string;
  line: number;
}

/** Parses known_hosts text; malformed lines are skipped as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#')) return;
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift()!;
      if (m !== '@revoked' && m !== '@cert-authority') return;
      marker = m.slice(1) as KnownHostEntry['marker'];
    }
    const [hosts, keyType, keyBase64] = fields;
    if (!hosts || !keyType || !keyBase64) return;
    entries.push({ ...(marker ? { marker } : {}), hosts, keyType, keyBase64, line: i + 1 });
  });
  return entries;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function matchesHashed(field: string, name: string): boolean {
  const [, magic, salt, hash] = field.split('|');
  if (magic !== '1' || !salt || !hash) return false;
  const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return digest === hash;
}

/** Whether a host field (hashed, or a pattern list with `!negations`) names `name`. */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return matchesHashed(field, name);
  let matched = false;
  for (const pattern of field.split(',')) {
    if (!pattern) continue;
    const negated = pattern.startsWith('!');
    if (!globToRegExp(negated ? pattern.slice(1) : pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** The entries (revoked ones included, CA lines excluded) that apply to host:port. */
export function entriesFor(entries: readonly KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  const name = knownHostsName(host, port);
  return entries.filter((e) => e.marker !== 'cert-authority' && hostFieldMatches(e.hosts, name));
}

function readEntries(knownHostsFile: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(knownHostsFile, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Compares a presented host key with what known_hosts says about host:port. */
export function checkHostKey(
  knownHostsFile: string,
  host: string,
  port: number,
  keyType: string,
  keyBase64: string,
): HostKeyStatus {
  const applicable = entriesFor(readEntries(knownHostsFile), host, port);
  const same = (e: KnownHostEntry) => e.keyType === keyType && e.keyBase64 === keyBase64;
  if (applicable.some((e) => e.marker === 'revoked' && same(e))) return 'revoked';
  const trusted = applicable.filter((e) => e.marker === undefined);
  if (trusted.some(same)) return 'match';
  return trusted.length > 0 ? 'changed' : 'unknown';
}

/** The key types known_hosts holds for host:port, in file order (to prefer them in key exchange). */
export function knownKeyTypes(knownHostsFile: string, host: string, port: number): string[] {
  const types = entriesFor(readEntries(knownHostsFile), host, port)
    .filter((e) => e.marker === undefined)
    .map((e) => e.keyType);
  return [...new Set(types)];
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:<base64>` as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
