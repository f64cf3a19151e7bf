import { z } from 'zod';
import { parseNetwork } from './destinations.ts';

// The `webhooks` section of the configuration (docs/webhooks.md). The api role dispatches.

const network = z.string().superRefine((text, context) => {
  try {
    parseNetwork(text);
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/**
 * Never reached by a webhook unless allowed: addresses of the host itself and of the cloud metadata
 * services (which hand out credentials), link-local, multicast and reserved ranges. Private networks
 * (RFC 1918, IPv6 ULA) are allowed: an internal CRM is a common receiver.
 */
export const defaultDeniedNetworks = [
  '0.0.0.0/8',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '100.100.100.200/32',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  'fe80::/10',
  'fd00:ec2::254/128',
  'ff00::/8',
];

export const webhooksSchema = z
  .object({
    /** How often the api role looks for due events. */
    intervalMs: z.number().int().min(50).max(600_000).default(1_000),
    /** Events per request (one JSON array), per subscription. */
    batchSize: z.number().int().min(1).max(10_000).default(500),
    /**
     * Subscriptions at most (paused ones count). Each one asking for a per-message kind adds an outbox
     * row to every outcome, in the MTA's transaction: 1,000 of them cost 8.4 ms per message sent.
     */
    maxSubscriptions: z.number().int().min(1).max(10_000).default(25),
    /** Subscriptions sent to at the same time; each has one request at most in flight, so its events stay in order. */
    concurrency: z.number().int().min(1).max(64).default(8),
    /** A request not answered 2xx within this time failed. */
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** A subscription failing this many requests in a row is paused (doctor finding; resume by hand). */
    pauseAfterFailures: z.number().int().min(1).default(20),
    /** Retry delays double from this, capped at maxRetrySeconds. */
    firstRetrySeconds: z.number().int().min(1).default(10),
    maxRetrySeconds: z.number().int().min(1).default(3_600),
    /**
     * Networks (CIDR) a webhook may not connect to, checked on the address connected to after DNS:
     * loopback, link-local (cloud metadata 169.254.169.254), this-host, multicast, reserved, and the
     * Alibaba and AWS IPv6 metadata addresses. Add private networks (10.0.0.0/8, 172.16.0.0/12,
     * 192.168.0.0/16, fc00::/7) to keep webhooks on the Internet.
     */
    deniedNetworks: z.array(network).default(defaultDeniedNetworks),
    /** Networks (CIDR) allowed even inside deniedNetworks, e.g. 127.0.0.1/32 for a receiver on this host. */
    allowedNetworks: z.array(network).default([]),
  })
  .strict();

export type WebhooksConfig = z.infer<typeof webhooksSchema>;
