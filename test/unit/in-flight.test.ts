import { describe, expect, it } from 'vitest';
import { inFlightCap, isNearAddress } from '../../scripts/lib/ssh/in-flight.js';
import type { Client } from 'ssh2';

describe('isNearAddress', () => {
  it('takes loopback, private, link-local and unique-local addresses for near', () => {
    for (const a of ['127.0.0.1', '10.213.0.11', '172.16.0.1', '172.31.255.254', '192.168.1.20', '169.254.3.4', '::1', 'fd12:3456::1', 'FC00::1', 'fe80::1', '::ffff:10.0.0.2']) {
      expect(isNearAddress(a), a).toBe(true);
    }
  });

  it('takes public addresses, and anything not an address, for far', () => {
    for (const a of ['8.8.8.8', '172.15.0.1', '172.32.0.1', '192.169.0.1', '100.64.0.1', '2001:db8::1', '::ffff:8.8.8.8', 'localhost', '', 'fd-not-an-address']) {
      expect(isNearAddress(a), a).toBe(false);
    }
  });
});

describe('inFlightCap', () => {
  const client = (version: unknown, address: unknown) => ({ _remoteVer: version, _sock: { remoteAddress: address } }) as unknown as Client;

  it('caps a near OpenSSH server only', () => {
    expect(inFlightCap(client('OpenSSH_9.2p1 Debian-2', '10.0.0.5'))).toBe(512 * 1024);
    expect(inFlightCap(client('OpenSSH_9.2p1', '203.0.113.7'))).toBeUndefined(); // far: the whole window
    expect(inFlightCap(client('dropbear_2022.83', '10.0.0.5'))).toBeUndefined(); // its window adjusts are not OpenSSH's
    expect(inFlightCap(client(undefined, undefined))).toBeUndefined(); // an ssh2 that no longer tells
  });
});
