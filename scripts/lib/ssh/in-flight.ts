// How much of what we send a near OpenSSH server may hold unread at once.
//
// sshd offers each channel a 2 MiB window, and keeps what the remote command has not read yet in
// one buffer that grows 32 KiB at a time, each step a fresh allocation the bytes are copied into.
// So a fresh connection's first transfer of a few MB costs sshd far more than its bytes: 15 MB
// into `cat` took 0.6-0.7 s of sshd's CPU on the 2-core test machines (~55,000 page faults),
// and 0.06 s with 512 KiB in flight (bench/README.md, the fleet row). A near host answers within
// a millisecond, where 512 KiB in flight still carries hundreds of MB/s; over a long link the
// window is what carries the throughput, so a far host gets it whole.
//
// Sound only where the server asks for more soon enough. OpenSSH sends its window adjust once
// more than three packets (96 KiB) are unacknowledged and some of them were consumed; a server
// that waited for half its window would wait forever for bytes we hold back. Hence OpenSSH only.
import { isIP } from 'node:net';
import type { Client, ClientChannel } from 'ssh2';

const NEAR_IN_FLIGHT = 512 * 1024;

/** Whether `address` is this machine or on a private network: loopback, RFC 1918, link-local, unique local. */
export function isNearAddress(address: string): boolean {
  const lower = address.toLowerCase();
  const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower;
  if (isIP(v4) === 4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
  }
  return isIP(lower) === 6 && (lower === '::1' || /^f[cd]/.test(lower) || /^fe[89ab]/.test(lower));
}

/** The cap for the channels of a connected `client`: 512 KiB for an OpenSSH server at a near address, else none. */
export function inFlightCap(client: Client): number | undefined {
  // ssh2 keeps both to itself: the server's software version (which its own vendor quirks
  // read) and the socket. Should a release drop either, no cap is what follows.
  const { _remoteVer: version, _sock: sock } = client as unknown as { _remoteVer?: unknown; _sock?: { remoteAddress?: unknown } };
  const address = typeof sock?.remoteAddress === 'string' ? sock.remoteAddress : '';
  return typeof version === 'string' && version.startsWith('OpenSSH') && isNearAddress(address) ? NEAR_IN_FLIGHT : undefined;
}

/** Sends at most `cap` bytes ahead of the server's acknowledgements on `channel`; call it before sending anything. */
export function capInFlight(channel: ClientChannel, cap: number): void {
  // ssh2 sends while its count of the server's window is above 0 and adds each window adjust to
  // it: lowered once before the first byte, the count stays that far below the real window.
  const outgoing = channel.outgoing as { window: number };
  outgoing.window = Math.min(outgoing.window, cap);
}
