// NODE_EXTRA_CA_CERTS narrowed for the cached verbs' start: only exact copies of node's bundled
// roots are dropped, whatever their line breaks; every other block stays, in its order; and the
// narrowing is made only where node's default trust is its bundled roots.
import { describe, expect, it } from 'vitest';
import { narrowExtraCa, trustsBundledRoots } from '../../scripts/lib/extra-ca.js';

const pem = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----`;
const rewrapped = (p: string) => p.replace(/\n(?!-)/g, '\r\n  ');

describe('narrowExtraCa', () => {
  const rootA = pem('CERTIFICATE', 'QUFBQQ==');
  const rootB = pem('CERTIFICATE', 'QkJCQg==');
  const company = pem('CERTIFICATE', 'Q09NUEFOWQ==');

  it('keeps what the file adds to the bundled roots, in its order, and drops their copies however wrapped', () => {
    const file = ['# the system bundle', rootA, company, rewrapped(rootB), pem('TRUSTED CERTIFICATE', 'QUFBQQ==')].join('\n');
    expect(narrowExtraCa(file, [rootA, rootB])).toBe(`${company}\n${pem('TRUSTED CERTIFICATE', 'QUFBQQ==')}\n`);
  });

  it('keeps a block that is not a certificate of the bundle, malformed or not', () => {
    const broken = pem('CERTIFICATE', 'not base64 at all');
    expect(narrowExtraCa(`${broken}\n${rootA}`, [rootA])).toBe(`${broken}\n`);
  });

  it('is empty when the file adds nothing', () => {
    expect(narrowExtraCa(`${rootA}\n${rootB}\n`, [rootB, rootA])).toBe('');
    expect(narrowExtraCa('', [rootA])).toBe('');
  });
});

describe('trustsBundledRoots', () => {
  it('is true for a default build, false under --use-openssl-ca, and the last of the two flags decides', () => {
    expect(trustsBundledRoots([], '', false)).toBe(true);
    expect(trustsBundledRoots(['--use-openssl-ca'], '', false)).toBe(false);
    expect(trustsBundledRoots([], '--max-old-space-size=100 --use-openssl-ca', false)).toBe(false);
    expect(trustsBundledRoots([], '--use-openssl-ca --use-bundled-ca', false)).toBe(true);
  });

  it('is false for a build whose default is OpenSSL store, unless --use-bundled-ca is given', () => {
    expect(trustsBundledRoots([], '', true)).toBe(false);
    expect(trustsBundledRoots(['--use-bundled-ca'], '', true)).toBe(true);
  });
});
