// Connections per client address, for the servers that must keep one client from holding every slot
// (inbound SMTP, the HTTP servers): an idle or trickling client holds at most this many, so others
// are still served. Pure: the server calls these as sockets open and close. A client is counted by
// its client key (client-address.ts): an IPv6 client by its /64, which holds 2^64 addresses to
// connect from.

import { clientKey, defaultIpv6PrefixLength } from './client-address.ts';

export interface ClientConnections {
  /**
   * Counts a new connection from `address`; false (not counted) when its client already holds
   * `maxPerClient`.
   */
  open(address: string): boolean;
  close(address: string): void;
  readonly clients: number;
}

export function createClientConnections(
  maxPerClient: number,
  ipv6PrefixLength = defaultIpv6PrefixLength,
): ClientConnections {
  const open = new Map<string, number>();
  return {
    open(address) {
      const client = clientKey(address, ipv6PrefixLength);
      const count = open.get(client) ?? 0;
      if (count >= maxPerClient) return false;
      open.set(client, count + 1);
      return true;
    },
    close(address) {
      const client = clientKey(address, ipv6PrefixLength);
      const count = open.get(client) ?? 0;
      if (count <= 1) open.delete(client);
      else open.set(client, count - 1);
    },
    get clients() {
      return open.size;
    },
  };
}
