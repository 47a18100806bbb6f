// How much of what we send a near OpenSSH server may hold unread at once: four of its packets.
//
// sshd offers each channel a 2 MiB window, and keeps what the remote command has not read yet in
// one buffer that grows 32 KiB at a time (each step a fresh allocation the bytes are copied into)
// and whose unread rest it moves to the front as the command reads: the more it holds, the more
// it copies. 15 MB into `cat` over a fresh connection took 0.6-0.7 s of sshd's CPU on the 2-core
// test machines with the whole window in flight (~55,000 page faults), 0.06 s with 512 KiB. Four
// packets (128 KiB) cost less again: a 2.5 MB project unpacked by `tar -x` took a median 146 ms of
// such a machine's CPU a host with 128 KiB in flight, 181 ms with 256 KiB and 243 ms with 512 KiB,
// interleaved (into `cat`: 53, 58 and 74 ms). A near host answers within a millisecond, where 128
// KiB in flight still carries over 100 MB/s; a far host gets the whole window, which is what
// carries the throughput of a long link. (A private address at the end of a long VPN gets the cap
// too: ~6 MB/s at 20 ms, for the one stream this bounds, the project's first copy of at most
// 64 MB; checkpoints and later pushes go by rsync over the system's ssh.)
//
// Sound only where the server asks for more soon enough. OpenSSH sends its window adjust once more
// than three of its packets are unacknowledged and some of them were consumed: with four in flight
// it always does (channel_check_window in channels.c, the same rule in its old releases and 10.x
// alike, and in HPN-SSH's). A server that waited for half its window would wait forever for bytes
// we hold back. Hence OpenSSH only.
import { isIP } from 'node:net';
import type { Client, ClientChannel } from 'ssh2';

/** OpenSSH adjusts its window once more than three of its packets are unacknowledged. */
const PACKETS_IN_FLIGHT = 4;

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

/** Whether the channels of a connected `client` should keep few bytes in flight: its server is OpenSSH at a near address. */
export function capsInFlight(client: Client): boolean {
  // ssh2 keeps both to itself: the server's software version (which its own vendor quirks
  // read) and the socket. Should a release drop either, no cap is what follows.
  const { _remoteVer: version, _sock: sock } = client as unknown as { _remoteVer?: unknown; _sock?: { remoteAddress?: unknown } };
  const address = typeof sock?.remoteAddress === 'string' ? sock.remoteAddress : '';
  return typeof version === 'string' && version.startsWith('OpenSSH') && isNearAddress(address);
}

/** Sends at most four of the server's packets ahead of its acknowledgements on `channel`; call it before sending anything. */
export function capInFlight(channel: ClientChannel): void {
  // ssh2 sends while its count of the server's window is above 0 and adds each window adjust to
  // it: lowered once before the first byte, the count stays that far below the real window.
  // packetSize is the most the server takes in one packet, as it said when the channel opened;
  // a window of NaN would send nothing ever, so an ssh2 that no longer keeps it gets no cap.
  const outgoing = channel.outgoing as { window: number; packetSize?: unknown };
  const { packetSize } = outgoing;
  if (typeof packetSize === 'number' && packetSize > 0) outgoing.window = Math.min(outgoing.window, PACKETS_IN_FLIGHT * packetSize);
}
