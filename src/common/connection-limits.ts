import ipaddr from 'ipaddr.js';
import { z } from 'zod';

// The connection limits of an HTTP server (api, tracking, mid-sourcing execution, metrics): the keys each of
// their config sections spreads in, with that server's defaults, and the matcher of the proxy
// addresses counted by the server-wide cap only.

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerClient: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** The zod keys of ConnectionLimits, with a server's defaults (spread into its config section). */
export function connectionLimitKeys(defaults: ConnectionLimits) {
  return {
    /**
     * Connections the server holds at once, all clients together; more are closed as they come, before a byte is
     * read. Keep it under the process's open-file limit minus what the rest of the process needs (database, SMTP):
     * without a cap, idle connections from one address took all 1,024 descriptors of a process.
     */
    maxConnections: z.number().int().min(1).max(1_000_000).default(defaults.maxConnections),
    /**
     * Connections one client address holds at once (an IPv6 client counted by its /64); more are closed at once,
     * so one address cannot take the slots of the others. Counted on the socket's own address, never a forwarded
     * header; the proxies in front are counted by maxConnections only.
     */
    maxConnectionsPerClient: z.number().int().min(1).max(1_000_000).default(defaults.maxConnectionsPerClient),
    /**
     * A request head (request line and headers) not complete this long after the connection opened, or after its
     * first byte on a kept-alive connection, is answered 408 and closed: a client sending headers a byte at a time
     * (slowloris) held its slot for 60 s (Node's default) and more.
     */
    headersTimeoutMs: z.number().int().min(1_000).max(300_000).default(defaults.headersTimeoutMs),
    /**
     * An idle kept-alive connection is closed this long after its last answer (Fastify's default was 72 s). Behind a
     * load balancer that reuses connections, keep it above the balancer's own idle timeout.
     */
    keepAliveTimeoutMs: z.number().int().min(1_000).max(600_000).default(defaults.keepAliveTimeoutMs),
  };
}

/**
 * Named ranges Fastify's trustProxy understands besides addresses and CIDR ranges. Anything else was
 * accepted by `herald config check` and stopped `herald start` with "invalid IP address: proxy.internal".
 */
const proxyRangeNames = ['loopback', 'linklocal', 'uniquelocal'];

/** A list of proxy addresses: IP addresses, CIDR ranges, or the named ranges above. */
export const proxyListSchema = z
  .array(
    z
      .string()
      .refine(
        (entry) => ipaddr.isValid(entry) || ipaddr.isValidCIDR(entry) || proxyRangeNames.includes(entry),
        `an IP address or a CIDR range (10.0.0.0/8, fd00::/8), or one of ${proxyRangeNames.join(', ')}`,
      ),
  )
  .default([]);

// The named ranges as proxy-addr (Fastify's trustProxy) defines them.
const namedRanges: Record<string, string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** Whether a socket address is one of `list` (a proxyListSchema value); an IPv4-mapped address matches as IPv4. */
export function addressMatcher(list: readonly string[]): (address: string) => boolean {
  const ranges = list.flatMap((entry) => namedRanges[entry] ?? [ipaddr.isValidCIDR(entry) ? entry : undefined]);
  const cidrs = ranges.filter((range) => range !== undefined).map((range) => ipaddr.parseCIDR(range));
  const singles = list.filter((entry) => ipaddr.isValid(entry)).map((entry) => ipaddr.process(entry).toString());
  return (address) => {
    if (!ipaddr.isValid(address)) return false;
    const parsed = ipaddr.process(address);
    if (singles.includes(parsed.toString())) return true;
    return cidrs.some(([network, bits]) => network.kind() === parsed.kind() && parsed.match(network, bits));
  };
}
