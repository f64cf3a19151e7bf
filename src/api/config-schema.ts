import { z } from 'zod';
import { connectionLimitKeys, proxyListSchema } from '../common/connection-limits.ts';

// The `api` section of the configuration (plugged into src/config/schema.ts): the HTTP API of role
// `api` (docs/api.md). Every key has a default and a comment.

/** Host names a server answers to besides its addresses (api.allowedHosts, metrics.allowedHosts). */
export const allowedHostsSchema = z
  .array(
    z.string().regex(/^(\*|[A-Za-z0-9_.-]+)$/, 'a host name alone (herald.example.com), without scheme, port or path'),
  )
  .default([]);

export const apiSchema = z
  .object({
    /** Interface the API server (role `api`) listens on; put a TLS-terminating proxy in front to expose it. */
    host: z.string().min(1).default('127.0.0.1'),
    /** Its own port, separate from tracking and mid-sourcing. */
    port: z.number().int().min(0).max(65535).default(8080),
    // Operators, their scripts and their browsers (six connections per origin each); the proxies of
    // api.trustedProxies are counted by maxConnections only.
    ...connectionLimitKeys({
      maxConnections: 512,
      maxConnectionsPerClient: 32,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
    }),
    /** Largest JSON request body, in bytes (CSV uploads are bounded by import.maxFileBytes instead). */
    maxBodyBytes: z
      .number()
      .int()
      .min(1_024)
      .default(1024 * 1024),
    /**
     * A request body (JSON, dashboard form) not fully received this long after its head arrived closes the
     * connection, so a client dripping bytes cannot hold it for ever; an authorized CSV upload is not bounded.
     */
    bodyTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Failed authentications one client address may make per window before it gets 429 for the rest of it. */
    authFailuresPerWindow: z.number().int().min(1).default(20),
    authFailureWindowSeconds: z.number().int().min(1).default(60),
    /**
     * An IPv6 client is counted by this prefix of its address (an IPv4 one by its address): each host is handed a
     * whole /64, and counted address by address it had 2^64 allowances of failures. 48 counts a whole site.
     */
    ipv6ClientPrefixLength: z.number().int().min(16).max(128).default(64),
    /** Largest page of a list endpoint (delivery logs, rejects, quarantine, audit). */
    maxPageSize: z.number().int().min(10).max(10_000).default(1_000),
    /** How long a dashboard session lasts after signing in with a token (docs/dashboard.md), in hours. */
    sessionHours: z.number().min(0.1).max(720).default(12),
    /**
     * Addresses (or CIDR ranges) of the TLS-terminating proxies in front of the API, whose X-Forwarded-Proto,
     * -Host and -For are believed: the dashboard then sees https (its origin check passes, its cookies are Secure)
     * and the auth limiter counts each client, not the proxy. Their connections are counted by api.maxConnections only
     * (api.maxConnectionsPerClient counts socket addresses, never a header). Empty: no header is believed.
     */
    trustedProxies: proxyListSchema,
    /**
     * Host names (no port) the API and dashboard answer to besides IP addresses, `localhost`, the machine's name and
     * api.host: the name operators type or a proxy forwards (its X-Forwarded-Host, believed from api.trustedProxies
     * only). A request for any other name gets 421, so a DNS-rebinding page cannot reach the API from a browser.
     * `["*"]`: any name.
     */
    allowedHosts: allowedHostsSchema,
  })
  .strict();

export type ApiConfig = z.infer<typeof apiSchema>;
