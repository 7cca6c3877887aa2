// The userland relay's UDP socket (the addon's UdpRelaySocket, addon/src/js/udp.cc): each datagram comes with
// the host address it was sent to, and the answer leaves from that address, as docker-proxy answers (Node's
// dgram cannot choose a datagram's source address). Like every use of the addon, it lives in runtime/.
import { native } from './native';

export interface RelaySocket {
  /** Whether the kernel took the datagram; `fromAddr` '' lets it pick the source address. */
  send(msg: Buffer, toAddr: string, toPort: number, fromAddr: string): boolean;
  close(): void;
}

/** A UDP socket bound to `address` (IPv6 ones v6-only) and `port`; throws the bind's error (`code`). */
export function udpRelaySocket(address: string, port: number,
  onMessage: (msg: Buffer, fromAddr: string, fromPort: number, toAddr: string) => void): RelaySocket {
  return new native.UdpRelaySocket(address.includes(':') ? 6 : 4, address, port, onMessage);
}
