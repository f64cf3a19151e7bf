import { z } from 'zod';

// The `webhooks` section of the configuration (docs/webhooks.md). The api role dispatches.

export const webhooksSchema = z
  .object({
    /** How often the api role looks for due events. */
    intervalMs: z.number().int().min(50).max(600_000).default(1_000),
    /** Events per request (one JSON array), per subscription. */
    batchSize: z.number().int().min(1).max(10_000).default(500),
    /** A request not answered 2xx within this time failed. */
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** A subscription failing this many requests in a row is paused (doctor finding; resume by hand). */
    pauseAfterFailures: z.number().int().min(1).default(20),
    /** Retry delays double from this, capped at maxRetrySeconds. */
    firstRetrySeconds: z.number().int().min(1).default(10),
    maxRetrySeconds: z.number().int().min(1).default(3_600),
  })
  .strict();

export type WebhooksConfig = z.infer<typeof webhooksSchema>;
