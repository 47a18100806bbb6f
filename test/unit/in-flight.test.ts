import { describe, expect, it } from 'vitest';
import type { Client, ClientChannel } from 'ssh2';
import { capInFlight, capsInFlight, isNearAddress } from '../../scripts/lib/ssh/in-flight.js';

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

describe('capsInFlight', () => {
  const client = (version: unknown, address: unknown) => ({ _remoteVer: version, _sock: { remoteAddress: address } }) as unknown as Client;

  it('caps a near OpenSSH server only', () => {
    expect(capsInFlight(client('OpenSSH_9.2p1 Debian-2', '10.0.0.5'))).toBe(true);
    expect(capsInFlight(client('OpenSSH_9.2p1', '203.0.113.7'))).toBe(false); // far: the whole window
    expect(capsInFlight(client('dropbear_2022.83', '10.0.0.5'))).toBe(false); // its window adjusts are not OpenSSH's
    expect(capsInFlight(client(undefined, undefined))).toBe(false); // an ssh2 that no longer tells
  });
});

describe('capInFlight', () => {
  const windowAfterCap = (window: number, packetSize: number | undefined) => {
    const channel = { outgoing: { window, packetSize } } as unknown as ClientChannel;
    capInFlight(channel);
    return (channel.outgoing as { window: number }).window;
  };

  it("lowers the window it sends into to four of the server's packets, one more than OpenSSH lets go unacknowledged", () => {
    expect(windowAfterCap(2 << 20, 32 * 1024)).toBe(128 * 1024);
    expect(windowAfterCap(2 << 20, 64 * 1024)).toBe(256 * 1024);
    expect(windowAfterCap(100 * 1024, 32 * 1024)).toBe(100 * 1024); // never above the server's own window
  });

  it('leaves the window whole where ssh2 no longer keeps the packet size, rather than stopping the channel', () => {
    expect(windowAfterCap(2 << 20, undefined)).toBe(2 << 20);
  });
});
