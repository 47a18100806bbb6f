// Quoting and known_hosts checked against the real tools: shellQuote round-trips hostile strings
// through sh and bash, and known_hosts matching agrees with keys and hashes made by ssh-keygen.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHostKey, fingerprint, hostFieldMatches, keyTypeOfBlob, knownKeyTypes, parseKnownHosts } from '../../scripts/lib/ssh/known-hosts.js';
import { shellQuote } from '../../scripts/lib/quote.js';

const HOSTILE = [
  '',
  ' ',
  'plain',
  'two words',
  '; rm -rf /',
  '$(id)',
  '`id`',
  '${HOME}',
  '$HOME',
  "it's",
  "'",
  "''",
  '"',
  '\\',
  'back\\slash\\',
  'new\nline',
  'tab\there',
  '*',
  '?',
  '[abc]',
  '{a,b}',
  '~',
  '~root',
  '!',
  '#comment',
  'a && b || c',
  '| tee x',
  '> /tmp/x',
  '< /etc/passwd',
  '-n',
  '--',
  'FOO=bar',
  'ünïcødé ☃',
  "'; echo pwned; '",
  '\r\u0001\u007f',
];

/** What `shell -c "printf '%s\0' <quoted>"` hands printf, split back into argv. */
function echoedArgv(shell: string, argv: string[]): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${shellQuote(argv)}`]).toString('utf8');
  return out.split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  it.each(['sh', 'bash'])('round-trips hostile strings through %s -c', (shell) => {
    expect(echoedArgv(shell, HOSTILE)).toEqual(HOSTILE);
    for (const word of HOSTILE) expect(echoedArgv(shell, [word])).toEqual([word]);
  });

  it('runs a quoted VAR=value word as a command, not an assignment', () => {
    expect(() => execFileSync('sh', ['-c', `${shellQuote(['FOO=bar', 'true'])}`], { stdio: 'pipe' })).toThrow();
  });
});

describe('known_hosts', () => {
  let dir: string;
  let ed: { type: string; key: string };
  let rsa: { type: string; key: string };
  let other: { type: string; key: string };

  function keygen(name: string, type: string): { type: string; key: string } {
    const file = path.join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', '', '-f', file]);
    const [t, k] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/);
    return { type: t!, key: k! };
  }

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'known-hosts-'));
    ed = keygen('ed', 'ed25519');
    rsa = keygen('rsa', 'rsa');
    other = keygen('other', 'ed25519');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function file(name: string, lines: string[]): string {
    const p = path.join(dir, name);
    writeFileSync(p, lines.join('\n') + '\n');
    return p;
  }

  it('matches plain names, [host]:port, wildcards and negations', () => {
    const f = file('plain', [
      '# a comment',
      '',
      `h1,10.0.0.1 ${ed.type} ${ed.key} root@h1`,
      `[h2]:2222 ${ed.type} ${ed.key}`,
      `*.fleet.example,!bad.fleet.example ${ed.type} ${ed.key}`,
      `@cert-authority * ${other.type} ${other.key}`,
      'garbage line',
    ]);
    expect(checkHostKey(f, 'h1', 22, ed.type, ed.key)).toBe('match');
    expect(checkHostKey(f, 'H1', 22, ed.type, ed.key)).toBe('match');
    expect(checkHostKey(f, '10.0.0.1', 22, ed.type, ed.key)).toBe('match');
    expect(checkHostKey(f, 'h1', 22, other.type, other.key)).toBe('changed');
    expect(checkHostKey(f, 'h1', 2222, ed.type, ed.key)).toBe('unknown');
    expect(checkHostKey(f, 'h2', 2222, ed.type, ed.key)).toBe('match');
    expect(checkHostKey(f, 'h2', 22, ed.type, ed.key)).toBe('unknown');
    expect(checkHostKey(f, 'a.fleet.example', 22, ed.type, ed.key)).toBe('match');
    expect(checkHostKey(f, 'bad.fleet.example', 22, ed.type, ed.key)).toBe('unknown');
    expect(checkHostKey(f, 'nowhere', 22, ed.type, ed.key)).toBe('unknown');
    expect(checkHostKey(path.join(dir, 'missing'), 'h1', 22, ed.type, ed.key)).toBe('unknown');
    expect(parseKnownHosts(readFileSync(f, 'utf8')).map((e) => e.line)).toEqual([3, 4, 5, 6]);
  });

  it('matches entries hashed by ssh-keygen -H, ports included', () => {
    const f = file('hashed', [`h1 ${ed.type} ${ed.key}`, `[h2]:2222 ${rsa.type} ${rsa.key}`]);
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'pipe' });
    const text = readFileSync(f, 'utf8');
    // No host name is left in the clear (key material is base64 and may contain "h1" by chance).
    expect(text.split('\n').filter(Boolean).every((l) => l.startsWith('|1|'))).toBe(true);
    expect(parseKnownHosts(text).every((e) => e.hosts.startsWith('|1|'))).toBe(true);
    expect(hostFieldMatches(parseKnownHosts(text)[0]!.hosts, 'h1')).toBe(true);
    expect(checkHostKey(f, 'h1', 22, ed.type, ed.key)).toBe('match');
    expect(checkHostKey(f, 'h1', 22, other.type, other.key)).toBe('changed');
    expect(checkHostKey(f, 'h2', 2222, rsa.type, rsa.key)).toBe('match');
    expect(checkHostKey(f, 'h2', 22, rsa.type, rsa.key)).toBe('unknown');
    expect(checkHostKey(f, 'h3', 22, ed.type, ed.key)).toBe('unknown');
    expect(knownKeyTypes(f, 'h2', 2222)).toEqual(['ssh-rsa']);
  });

  it('refuses @revoked keys even when another line trusts them', () => {
    const f = file('revoked', [`h1 ${ed.type} ${ed.key}`, `@revoked * ${ed.type} ${ed.key}`]);
    expect(checkHostKey(f, 'h1', 22, ed.type, ed.key)).toBe('revoked');
    expect(checkHostKey(f, 'h9', 22, ed.type, ed.key)).toBe('revoked');
  });

  it('reads key blobs and fingerprints as ssh-keygen does', () => {
    const blob = Buffer.from(ed.key, 'base64');
    expect(keyTypeOfBlob(blob)).toBe('ssh-ed25519');
    const printed = execFileSync('ssh-keygen', ['-l', '-f', path.join(dir, 'ed.pub')]).toString();
    expect(printed).toContain(fingerprint(blob));
  });
});
