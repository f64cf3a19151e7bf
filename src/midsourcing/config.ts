import { z } from 'zod';
import { connectionLimitKeys, proxyListSchema } from '../common/connection-limits.ts';

// The `midsourcing` section of herald.yaml (plugged into src/config/schema.ts). Secrets are read
// from here only; they are never logged or printed (status output shows peer names and URLs).

/** The most parts a push keeps on the wire at once (midsourcing.partsInFlight). */
export const maxPartsInFlight = 32;

const peerSchema = z
  .object({
    /** Marketing side: the execution instance's name. Execution side: the marketing instance's name (as it signs). */
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash and underscore'),
    /** Marketing side: base URL of the execution instance (`http://exec-1.example:8025`). Unused on the execution side. */
    url: z.string().url().optional(),
    /** Shared secret of the pair (HMAC-SHA256 key); at least 16 characters. */
    secret: z.string().min(16),
    /**
     * Marketing side, only while upgrading: believe this execution instance's answers that carry no
     * answer signature (a Herald older than answer signing). Anything answering on its url can then
     * acknowledge parts, stop pushes and report outcomes: a warning at every use, `herald config check`
     * and `herald start` name it. Badly signed answers are still refused. Remove it once the peer is upgraded.
     */
    acceptUnsignedAnswers: z.boolean().default(false),
  })
  .strict();

export const midsourcingSchema = z
  .object({
    /** `marketing`: prepares and pushes to execution peers; `execution`: receives and sends; `off`. */
    mode: z.enum(['off', 'marketing', 'execution']).default('off'),
    /** The name this instance signs its requests with (must match the peer entry on the other side). */
    name: z.string().min(1).max(100).default('herald'),
    /** Where the execution instance's HTTP server listens (role `mid`). */
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8025),
        // Few peers, each pushing midsourcing.partsInFlight parts (at most 32) and pulling logs.
        ...connectionLimitKeys({
          maxConnections: 256,
          maxConnectionsPerClient: 48,
          headersTimeoutMs: 10_000,
          keepAliveTimeoutMs: 5_000,
        }),
        /**
         * Addresses (or CIDR ranges, or loopback, linklocal, uniquelocal) of the TLS proxies in front of this server:
         * their connections carry every peer's, so they are counted by maxConnections only, not maxConnectionsPerClient.
         */
        proxies: proxyListSchema,
      })
      .strict()
      .default({}),
    /** The other side(s): execution instances (marketing mode) or allowed marketing instances (execution mode). */
    peers: z.array(peerSchema).default([]),
    /** Recipients per delivery part. */
    partSize: z.number().int().min(1).max(100_000).default(5_000),
    /** Parts pushed concurrently. */
    partsInFlight: z.number().int().min(1).max(maxPartsInFlight).default(3),
    /** A request without a response after this long is abandoned and retried. */
    requestTimeoutMs: z.number().int().min(100).default(30_000),
    /** Attempts per request before a push gives up (its state is kept: pushing again resumes). */
    maxAttempts: z.number().int().min(1).default(10),
    /** Exponential backoff with jitter between attempts: base, doubled each time, capped. */
    retryBaseMs: z.number().int().min(1).default(500),
    retryMaxMs: z.number().int().min(1).default(60_000),
    /** Largest request body accepted by the execution server (a gzip part), in bytes. */
    maxBodyBytes: z
      .number()
      .int()
      .min(1_024)
      .default(32 * 1024 * 1024),
    /**
     * Bytes of request bodies being received whose signature is not yet verified, at most (a request
     * over it waits its turn: 503, retried by the client). One request always proceeds alone.
     */
    maxUnverifiedBytesInFlight: z
      .number()
      .int()
      .min(1_024)
      .default(64 * 1024 * 1024),
    /** Largest part once decompressed, in bytes (guards against gzip bombs). */
    maxPartBytes: z
      .number()
      .int()
      .min(1_024)
      .default(256 * 1024 * 1024),
    /** Signed requests are accepted within ± this of the server's clock; nonces are remembered this long. */
    replayWindowSeconds: z.number().int().min(10).max(3_600).default(300),
    /** Delivery log changes per pull request. */
    logsPageSize: z.number().int().min(1).max(100_000).default(5_000),
    /**
     * Execution side: the cleanup workflow deletes a delivery-log change once its marketing peer has
     * read past it and it was published this many days ago (a margin for a marketing side that must
     * pull again, e.g. after restoring its database). 0: as soon as it was read past.
     */
    logChangesRetentionDays: z.number().min(0).max(3_650).default(7),
  })
  .strict();

/** A peer entry; one built in code may leave out what has a default (acceptUnsignedAnswers: false). */
export type MidPeerConfig = z.input<typeof peerSchema>;
export type MidsourcingConfig = Omit<z.infer<typeof midsourcingSchema>, 'peers'> & { peers: MidPeerConfig[] };

export const defaultMidsourcingConfig = (): MidsourcingConfig => midsourcingSchema.parse({});
