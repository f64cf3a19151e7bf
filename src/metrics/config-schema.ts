import { z } from 'zod';
import { allowedHostsSchema } from '../api/config-schema.ts';
import { connectionLimitKeys } from '../common/connection-limits.ts';

// The `metrics` section of the configuration (docs/metrics.md).

export const metricsSchema = z
  .object({
    /** A process running the api role serves /metrics on api.port. Others serve it (with /healthz, /readyz) on this port when set; null = not served. */
    port: z.number().int().min(0).max(65535).nullable().default(null),
    host: z.string().min(1).default('127.0.0.1'),
    /**
     * Host names (no port) metrics.port answers to besides IP addresses, `localhost`, the machine's name and
     * metrics.host: the name Prometheus scrapes it by. Any other name gets 421, so a DNS-rebinding page in an
     * operator's browser cannot read /metrics. `["*"]`: any name. (On api.port, api.allowedHosts applies.)
     */
    allowedHosts: allowedHostsSchema,
    // Prometheus (one or an HA pair) and probes need a few connections, and the port lives in an MTA's or
    // workflow's own process: without caps, one client holding thousands of idle connections (each kept up
    // to 72 s) took the file descriptors the process sends mail and reads its database with.
    ...connectionLimitKeys({
      maxConnections: 64,
      maxConnectionsPerClient: 16,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
    }),
    /** Platform gauges (queue depth, deliveries, workflows, shaping) are read from the database at most this often, whatever the number of scrapers; a stale value is served while it is refreshed behind the scrape. 0: every scrape waits for its own read. */
    cacheSeconds: z.number().min(0).max(300).default(5),
  })
  .strict();

export type MetricsConfig = z.infer<typeof metricsSchema>;
