import { z } from 'zod';
import { connectionLimitKeys, proxyListSchema } from '../common/connection-limits.ts';

// The `tracking` section of the configuration (plugged into src/config/schema.ts). Every key has a
// default and a comment; docs/tracking.md lists them.

// Both are written into every message as they are, HTML attributes and a header line alike: a line
// break (an environment variable read with its trailing newline) or a quote would break out of them.
const domainNamePattern =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isPlainHttpUrl(value: string): boolean {
  return /^https?:\/\/[^\s"'<>\\^`{|}\u0000-\u001f\u007f]+$/i.test(value) && URL.canParse(value);
}

const trackingKeySchema = z
  .object({
    /** Written into every token: 1-16 characters of A-Z a-z 0-9 _ -. */
    id: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/),
    /** HMAC-SHA256 secret (never logged); 32+ random characters. */
    secret: z.string().min(16),
    /** ISO 8601 date; the newest key signs, older keys verify until keyGraceDays after a newer one. */
    createdAt: z.string().datetime({ offset: true }).or(z.string().date()),
  })
  .strict();

export const trackingSchema = z
  .object({
    /** Interface the tracking server (role `tracking`) listens on. */
    host: z.string().default('127.0.0.1'),
    /** Its own port, separate from the API. */
    port: z.number().int().min(0).max(65535).default(8090),
    // Open to the Internet: every mail client and link scanner connects here, a few at a time each.
    ...connectionLimitKeys({
      maxConnections: 4_096,
      maxConnectionsPerClient: 64,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
    }),
    /**
     * Addresses (or CIDR ranges, or loopback, linklocal, uniquelocal) of the proxies or load balancers in front of the
     * tracking server: every client's connections come from their address, so they are counted by maxConnections
     * only, not maxConnectionsPerClient (limit clients on the proxy). Nothing is read from forwarded headers.
     */
    proxies: proxyListSchema,
    /** Public base URL written into messages ('' = http://host:port). */
    baseUrl: z
      .string()
      .default('')
      .refine((value) => value === '' || isPlainHttpUrl(value), {
        message:
          'must be an absolute http:// or https:// URL without spaces, line breaks, quotes or angle brackets, e.g. https://t.example.com (it is written as is into every link and the List-Unsubscribe header)',
      }),
    /** Domain of the mailto: List-Unsubscribe address (unsubscribe+TOKEN@domain); '' = https only. */
    unsubscribeMailDomain: z
      .string()
      .default('')
      .refine((value) => value === '' || domainNamePattern.test(value), {
        message: 'must be a domain name, e.g. unsubscribe.example.com (it is written into the List-Unsubscribe header)',
      }),
    /** Signing keys; none = one generated into the database at first use. */
    keys: z.array(trackingKeySchema).default([]),
    /** How long an older key still verifies after a newer key was created. */
    keyGraceDays: z.number().min(0).default(30),
    /** Tracked links, pixels and unsubscribe links stop working after this long. */
    tokenTtlDays: z.number().min(1).default(365),
    /** A click this soon after the message was built looks like a security scanner (flagged, not dropped). */
    automatedClickSeconds: z.number().int().min(0).default(10),
    /**
     * Raw events one message may log at once (all its tokens name one delivery log): a scanner following every link of
     * a long message fits; a token replayed in a loop does not. Over budget, requests are answered but not logged.
     */
    messageEventBurst: z.number().int().min(1).default(200),
    /** Events a message earns back per second once its burst is spent. */
    messageEventsPerSecond: z.number().min(0).default(1),
    /** Raw events held in memory at most; beyond, events are dropped and counted (never blocks a redirect). */
    maxBufferedEvents: z.number().int().min(100).default(100_000),
    /** Raw events per insert. */
    flushBatchSize: z.number().int().min(1).max(5_000).default(1_000),
    /** Longest time an event waits in memory before it is written. */
    flushIntervalMs: z.number().int().min(10).default(1_000),
    /** Opens of one recipient closer than this count once in total opens. */
    openDedupSeconds: z.number().int().min(0).default(60),
  })
  .strict();

export type TrackingConfig = z.infer<typeof trackingSchema>;
