import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { defaultIpv6PrefixLength } from './client-address.ts';
import { createClientConnections } from './client-connections.ts';
import { systemClock, type Clock } from './clock.ts';
import type { ConnectionLimits } from './connection-limits.ts';
import type { Logger } from './logger.ts';

// Connection caps and timeouts of an HTTP server open to strangers (api, tracking, mid-sourcing
// execution, metrics). Without them, 1,100 idle connections from one address took every file
// descriptor of a tracking process (ulimit 1,024) and a click from another address was reset; one
// request on each then kept them for Fastify's 72 s keep-alive, renewable at will. Over a cap, a connection is closed
// as it is accepted, before a byte of it is read. The per-client cap keys on the socket's address:
// a forwarded header cannot be read before the request, and would let anyone choose their key.

export type ConnectionRefusal = 'server_full' | 'client_full';

export interface ConnectionGuardOptions {
  /** The server's name in the log line: api, tracking, mid, metrics. */
  name: string;
  /** Where its limits are configured, for the log line: `tracking`, `midsourcing.listen`. */
  configSection: string;
  limits: ConnectionLimits;
  /** An IPv6 client is counted by this prefix of its address (common/client-address.ts). */
  ipv6PrefixLength?: number;
  /** Socket addresses counted by maxConnections only: the proxies in front carry every client's connections. */
  uncapped?(address: string): boolean;
  logger: Logger;
  clock?: Clock;
  /** Each refused connection (a metric). */
  onRefused?(reason: ConnectionRefusal): void;
}

/** A refusal is logged at most this often per server, with the counts since the last line. */
const logEveryMs = 60_000;
/** How often Node checks the headers timeout (its default, 30 s, let a 10 s timeout hold a slot 40 s). */
const checkEveryMs = 1_000;

/** Applies the caps and timeouts to `server`; call before it listens. */
export function guardConnections(server: Server, options: ConnectionGuardOptions): void {
  const { logger } = options;
  // Copied: a config section passed as `limits` carries secrets (tracking keys) never to be logged.
  const limits: ConnectionLimits = {
    maxConnections: options.limits.maxConnections,
    maxConnectionsPerClient: options.limits.maxConnectionsPerClient,
    headersTimeoutMs: options.limits.headersTimeoutMs,
    keepAliveTimeoutMs: options.limits.keepAliveTimeoutMs,
  };
  const clock = options.clock ?? systemClock;
  const perClient = createClientConnections(
    limits.maxConnectionsPerClient,
    options.ipv6PrefixLength ?? defaultIpv6PrefixLength,
  );
  server.maxConnections = limits.maxConnections;
  server.headersTimeout = limits.headersTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // A constructor option in @types/node, but Node reads the property when the server starts listening.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(
    checkEveryMs,
    limits.headersTimeoutMs,
  );

  const counts: Record<ConnectionRefusal, number> = { server_full: 0, client_full: 0 };
  let loggedAt = Number.NEGATIVE_INFINITY;
  const refused = (reason: ConnectionRefusal, address: string | undefined) => {
    options.onRefused?.(reason);
    counts[reason]++;
    const now = clock.now();
    if (now - loggedAt < logEveryMs) return;
    loggedAt = now;
    logger.warn(
      {
        server: options.name,
        refused: { ...counts },
        lastClient: address,
        maxConnections: limits.maxConnections,
        maxConnectionsPerClient: limits.maxConnectionsPerClient,
      },
      `${options.name}: connections refused over ${options.configSection}.maxConnections or maxConnectionsPerClient`,
    );
    counts.server_full = 0;
    counts.client_full = 0;
  };

  // Node closes a connection over server.maxConnections itself, before any listener sees it.
  server.on('drop', (data?: { remoteAddress?: string }) => refused('server_full', data?.remoteAddress));
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    // No address: the peer is already gone.
    if (address === undefined) return void socket.destroy();
    if (options.uncapped?.(address)) return;
    if (!perClient.open(address)) {
      socket.destroy();
      refused('client_full', address);
      return;
    }
    socket.once('close', () => perClient.close(address));
  });
}
