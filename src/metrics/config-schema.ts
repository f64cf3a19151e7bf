import { z } from 'zod';

// The `metrics` section of the configuration (docs/metrics.md).

export const metricsSchema = z
  .object({
    /** A process running the api role serves /metrics on api.port. Others serve it (with /healthz, /readyz) on this port when set; null = not served. */
    port: z.number().int().min(0).max(65535).nullable().default(null),
    host: z.string().min(1).default('127.0.0.1'),
    /** Platform gauges (queue depth, deliveries, workflows, shaping) are read from the database at most this often, whatever the number of scrapers; a stale value is served while it is refreshed behind the scrape. 0: every scrape waits for its own read. */
    cacheSeconds: z.number().min(0).max(300).default(5),
  })
  .strict();

export type MetricsConfig = z.infer<typeof metricsSchema>;
