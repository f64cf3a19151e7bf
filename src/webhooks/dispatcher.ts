import { createHmac, randomUUID } from 'node:crypto';
import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import { maskUrl } from '../common/mask-url.ts';
import type { Store } from '../store/database.ts';
import type { WebhookSubscriptionRow } from '../store/tables.ts';
import type { WebhooksConfig } from './config-schema.ts';
import { createCommitWatermark } from './commit-watermark.ts';
import { createDestinationPolicy, hostAddresses } from './destinations.ts';
import { createWebhookPoster, type PostWebhook, type ResolveHost, type WebhookAnswer } from './post-webhook.ts';
import { webhookRetryAt } from './retry.ts';
import {
  claimSubscription,
  dueEvents,
  recordDelivered,
  recordFailed,
  releaseSubscription,
  subscriptionsWithDueEvents,
} from './webhook-store.ts';

// Sends the outbox: per subscription, the oldest due events in one signed POST
// ({"events":[{id,kind,createdAt,data}]}). 2xx: they leave the outbox. Anything else: retried with
// doubling delays; a subscription failing pauseAfterFailures requests in a row is paused.
// Signature: X-Herald-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>, with the
// timestamp (ms) in X-Herald-Timestamp, so a receiver can refuse replays outside a window.

/** How long a dispatcher's lease on a subscription outlives its request's timeout. */
const leaseMarginMs = 60_000;

export interface WebhookDispatcher {
  /** One pass over every subscription with due events; returns the events delivered. */
  runOnce(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * X-Herald-Signature: the signature with the current secret, then, until the overlap of a rotation
 * ends, the one with the previous secret (an HTTP list: `sha256=…, sha256=…`). A receiver accepts a
 * request when one of them matches its secret, so it may switch secrets at any time of the overlap.
 */
export function signatureHeader(subscription: WebhookSubscriptionRow, timestamp: number, body: string): string {
  const current = signWebhook(subscription.secret, timestamp, body);
  const until = subscription.previous_secret_until;
  if (subscription.previous_secret === null || until === null || Number(until) <= timestamp) return current;
  return `${current}, ${signWebhook(subscription.previous_secret, timestamp, body)}`;
}

/** Why a request failed (for the log and lastError); undefined when the receiver took the batch (2xx). */
function failureOf(answer: Exclude<WebhookAnswer, { kind: 'aborted' }>, url: string): string | undefined {
  // An error may quote the URL: a subscription made before URLs with a password were refused must
  // not put it in the log or in lastError.
  if (answer.kind === 'failed') return answer.error.split(url).join(maskUrl(url));
  if (answer.status === 410) return 'HTTP 410 Gone: the receiver says this URL no longer exists (paused at once)';
  return answer.status < 200 || answer.status >= 300 ? `HTTP ${answer.status}` : undefined;
}

export function createWebhookDispatcher(options: {
  store: Store;
  config: WebhooksConfig;
  clock: Clock;
  logger: Logger;
  /** Seam for tests: how a host name resolves (default: the system resolver). */
  resolve?: ResolveHost;
  /** Seam for tests: the POST itself (default: checked against webhooks.deniedNetworks/allowedNetworks). */
  post?: PostWebhook;
}): WebhookDispatcher {
  const { store, config, clock, logger } = options;
  const post =
    options.post ??
    createWebhookPoster({ policy: createDestinationPolicy(config, hostAddresses()), resolve: options.resolve });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  // stop() drops the requests in flight instead of waiting up to webhooks.timeoutMs for their answer.
  let stopping = new AbortController();
  const watermark = createCommitWatermark(store, clock, logger);
  // Events per request of the subscriptions whose receiver refused a batch as too large (413).
  const batchLimits = new Map<number, number>();

  const holder = randomUUID();

  /**
   * One batch of a subscription, under its lease: another api process on the database sending to
   * it now is left alone (it would send the same events, a second request in flight).
   */
  async function deliverBatch(
    listed: WebhookSubscriptionRow,
    throughId: number,
  ): Promise<{ delivered: number; more: boolean }> {
    const now = clock.now();
    // The lease outlives the request (timeoutMs) by the time to record its outcome.
    const until = now + config.timeoutMs + leaseMarginMs;
    const subscription = await claimSubscription(store, listed.id, { holder, now, until });
    if (!subscription) return { delivered: 0, more: false };
    try {
      return await sendBatch(subscription, throughId);
    } finally {
      await releaseSubscription(store, subscription.id, holder);
    }
  }

  /** One batch of a subscription's due events: how many were delivered, and whether more may be due. */
  async function sendBatch(
    subscription: WebhookSubscriptionRow,
    throughId: number,
  ): Promise<{ delivered: number; more: boolean }> {
    const now = clock.now();
    const limit = batchLimits.get(subscription.id) ?? config.batchSize;
    const events = await dueEvents(store, subscription.id, now, limit, throughId);
    if (events.length === 0) return { delivered: 0, more: false };
    const body = JSON.stringify({
      events: events.map((e) => ({
        id: e.id,
        kind: e.kind,
        createdAt: new Date(Number(e.created_at)).toISOString(),
        data: JSON.parse(e.payload) as unknown,
      })),
    });
    const ids = events.map((e) => e.id);
    const answer = await post({
      url: subscription.url,
      headers: {
        'content-type': 'application/json',
        'x-herald-timestamp': String(now),
        'x-herald-signature': signatureHeader(subscription, now, body),
        'x-herald-batch': randomUUID(),
      },
      body,
      timeoutMs: config.timeoutMs,
      signal: stopping.signal,
    });
    // Stopped mid-request: the events stay due as they were, sent again at the next start.
    if (answer.kind === 'aborted') return { delivered: 0, more: false };
    // 413 Content Too Large: the receiver's body limit is below the batch (express.json() refuses
    // 100 kB, about 400 message.sent events). Sent whole again and again, the batch failed until the
    // subscription was paused, and resuming it failed the same way. Half as many events per request,
    // at once (until one: then a failure like any other); kept for the life of the process.
    if (answer.kind === 'answered' && answer.status === 413 && events.length > 1) {
      batchLimits.set(subscription.id, Math.ceil(events.length / 2));
      logger.warn(
        { subscription: subscription.id, events: Math.ceil(events.length / 2) },
        'webhook receiver refused a batch as too large (HTTP 413); sending fewer events per request',
      );
      return { delivered: 0, more: true };
    }
    // 410 Gone: the receiver says the URL is gone for good (RFC 9110 15.5.11). Retried like a 503,
    // it got requests for pauseAfterFailures rounds (about 11 hours), events piling up meanwhile.
    const gone = answer.kind === 'answered' && answer.status === 410;
    const error = failureOf(answer, subscription.url);
    if (error === undefined) {
      await recordDelivered(store, subscription.id, ids, clock.now());
      return { delivered: ids.length, more: ids.length === limit };
    }
    // The receiver's failures in a row, not the events' attempts: a batch mixes events retried with
    // events written since, so the backoff of its newest (none yet) would stay at the first delay.
    const failures = Number(subscription.consecutive_failures);
    await recordFailed(store, subscription.id, {
      ids,
      retryAt: webhookRetryAt(clock.now(), failures, config.firstRetrySeconds, config.maxRetrySeconds),
      error,
      pauseAfter: gone ? 0 : config.pauseAfterFailures,
      now: clock.now(),
    });
    logger.warn(
      { subscription: subscription.id, error },
      gone ? 'webhook paused' : 'webhook delivery failed; retried later',
    );
    return { delivered: 0, more: false };
  }

  // Subscriptions take turns, a batch each: a slow receiver with a backlog it never catches up
  // with (message.sent at sending speed) held the pass for itself, every other subscription
  // waiting, and stop() with it. webhooks.concurrency turns are taken at once: one receiver slow to
  // answer (up to webhooks.timeoutMs, every batch) held every other subscription behind each of its
  // requests. A subscription is in the queue once at most, so its batches stay in order.
  async function runOnce(): Promise<number> {
    let delivered = 0;
    // Only events no smaller id can still be committed before: a receiver keeps the last id it processed.
    const throughId = await watermark.advance();
    const queue = await subscriptionsWithDueEvents(store, clock.now(), throughId);
    const takeTurns = async () => {
      for (let subscription = queue.shift(); subscription && !stopped; subscription = queue.shift()) {
        const batch = await deliverBatch(subscription, throughId);
        delivered += batch.delivered;
        if (batch.more) queue.push(subscription);
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.concurrency, queue.length) }, takeTurns));
    return delivered;
  }

  const loop = () => {
    if (stopped) return;
    running = runOnce()
      .catch((error) => logger.error({ err: error }, 'webhook dispatcher pass failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, config.intervalMs);
      });
  };

  return {
    runOnce,
    start() {
      stopped = false;
      stopping = new AbortController();
      timer = setTimeout(loop, config.intervalMs);
    },
    async stop() {
      stopped = true;
      stopping.abort();
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
