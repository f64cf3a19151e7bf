import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import { automatedFlagsOf, clickBurst, type FlagSettings } from './automation.ts';
import type { DeliveryCache } from './delivery-cache.ts';
import type { EventLog, RawEvent } from './event-log.ts';
import { createMessageBudget } from './message-budget.ts';
import { isOneClickBody } from './one-click.ts';
import {
  badRequestPage,
  notFoundPage,
  transparentGif,
  unavailablePage,
  uriTooLongPage,
  unsubscribeConfirmPage,
  unsubscribedPage,
} from './pages.ts';
import { maxTokenLength, type KeyRing, type TokenClaims, type TokenKind } from './token.ts';
import type { TrackingEventKind } from '../store/tables.ts';

// The tracking server (role `tracking`): /r/ redirects, /o/ open pixel, /m/ mirror page, /u/
// unsubscribe. Every answer derives from a verified token and the database — never from a URL or
// header of the request — so a tampered, unknown or expired token gets a plain 404 page.

export interface TrackingAppOptions {
  keyRing: KeyRing;
  cache: DeliveryCache;
  events: EventLog;
  /**
   * One-click unsubscribe: denylists the address and writes its raw `unsubscribe` event in one
   * transaction (not through the event buffer, which drops under a flood and loses what it holds in
   * a crash); false when this log's unsubscribe was already applied (nothing written).
   */
  unsubscribe(email: string, event: RawEvent): Promise<boolean>;
  clock: Clock;
  flags: FlagSettings;
  /** Raw events one message may log at once, and earns back per second (tracking.messageEvent*). */
  messageBudget: { burst: number; perSecond: number };
  logger: Logger;
}

const maxUserAgent = 256;
// Burst detection: clicks per message within this window (a scanner opens every link at once).
const burstWindowMs = clickBurst.windowMs;
const maxBurstEntries = 10_000;
const maxClicksKept = 16;
// Messages whose event budget is tracked at once (the most recently active).
const maxBudgetedMessages = 10_000;
// Recorded unsubscribes remembered to answer their replays (the oldest leave first).
const maxUnsubscribedLogs = 10_000;

// Herald's own pages (confirmation, errors): no script, no framing — another site could frame the
// unsubscribe confirmation under a decoy and have its button clicked — and the form posts only here.
const pagePolicy =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
// The mirror page is the operator's HTML: no script runs, images and styles load as in a mail client;
// no form posts anywhere, no <base> re-targets its links, no other site frames it.
const mirrorPolicy =
  "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; font-src https:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

export function buildTrackingApp(options: TrackingAppOptions): FastifyInstance {
  const { keyRing, cache, events, clock, logger } = options;
  const app = Fastify({
    logger: false,
    // A token is at most maxTokenLength characters; longer path segments match no route (404).
    routerOptions: { maxParamLength: maxTokenLength },
    // Only POST /u/ takes a body (RFC 8058: "List-Unsubscribe=One-Click"): 1 KiB is plenty.
    bodyLimit: 1_024,
    return503OnClosing: true,
    requestTimeout: 10_000,
    // A path the router refuses (too long, bad percent-encoding) gets the plain page like any other
    // error: Fastify's own answer is JSON quoting the whole path back to whoever sent it.
    frameworkErrors: (error, _request, reply) => {
      const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400;
      html(reply, status, status === 414 ? uriTooLongPage : badRequestPage);
    },
  });
  const recentClicks = new Map<number, number[]>();
  // Logs whose one-click unsubscribe is recorded (applied now or before). A replay would change
  // nothing, yet each cost a log read and a transaction — on SQLite on the event loop: one client
  // replaying its own POST got 1,000 answers/s and halved the redirects an open-pixel flood left.
  const unsubscribedLogs = new Set<number>();
  const budget = createMessageBudget({ ...options.messageBudget, maxMessages: maxBudgetedMessages });

  // Any body type is read as a short string: receivers post urlencoded or multipart (one-click.ts reads it).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 1_024 }, (_request, body, done) => done(null, body));

  const html = (reply: FastifyReply, status: number, body: string, policy = pagePolicy) =>
    reply
      .code(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', policy)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(body);
  const notFound = (reply: FastifyReply) => html(reply, 404, notFoundPage);

  app.setNotFoundHandler((_request, reply) => notFound(reply));
  app.setErrorHandler((error: { statusCode?: number }, _request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 503;
    if (status === 503) logger.error({ err: describeError(error) }, 'tracking request failed');
    return html(reply, status, status === 503 ? unavailablePage : badRequestPage);
  });

  function verified(token: string, kind: TokenKind, now: number): TokenClaims | undefined {
    const result = keyRing.verify(token, now);
    return result.ok && result.claims.kind === kind ? result.claims : undefined;
  }

  function record(
    request: FastifyRequest,
    kind: TrackingEventKind,
    claims: TokenClaims,
    now: number,
    linkIndex: number | null,
  ): void {
    // A replayed token answers as usual; only its events stop reaching the log and the webhooks.
    if (!budget.take(claims.logId, now)) events.countOverBudget();
    else events.add(eventOf(request, kind, claims, now, linkIndex));
  }

  function eventOf(
    request: FastifyRequest,
    kind: TrackingEventKind,
    claims: TokenClaims,
    now: number,
    linkIndex: number | null,
  ): RawEvent {
    const agent = request.headers['user-agent'];
    const userAgent = typeof agent === 'string' ? agent.slice(0, maxUserAgent) : undefined;
    let clicks = 0;
    if (kind === 'click') clicks = noteClick(claims.logId, now);
    const flags = automatedFlagsOf(
      {
        kind,
        method: request.method,
        userAgent,
        secondsSinceSent: now / 1_000 - claims.issuedAt,
        recentClicks: clicks,
      },
      options.flags,
    );
    return {
      deliveryId: claims.deliveryId,
      logId: claims.logId,
      kind,
      linkIndex,
      at: now,
      flags,
      userAgent: userAgent ?? null,
    };
  }

  // Click times of recent messages, pruned in place (no allocation per click); entries leave in
  // insertion order once the map is full.
  function noteClick(logId: number, now: number): number {
    let times = recentClicks.get(logId);
    if (!times) {
      if (recentClicks.size >= maxBurstEntries) recentClicks.delete(recentClicks.keys().next().value!);
      times = [];
      recentClicks.set(logId, times);
    }
    let kept = 0;
    for (const t of times) if (now - t < burstWindowMs) times[kept++] = t;
    times.length = kept;
    if (kept < maxClicksKept) times.push(now);
    return kept + 1;
  }

  function redirect(
    request: FastifyRequest,
    reply: FastifyReply,
    claims: TokenClaims,
    target: string | undefined,
    now: number,
  ): void {
    if (!target) {
      notFound(reply);
      return;
    }
    record(request, 'click', claims, now, claims.linkIndex ?? null);
    reply.code(302).headers({ location: target, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).send();
  }

  // Not an async function: a click on a static link of a loaded delivery (nearly every click) is
  // answered synchronously, with no promise and no database read; only the rest waits for the cache.
  app.get<{ Params: { token: string } }>('/r/:token', (request, reply) => {
    const now = clock.now();
    const claims = verified(request.params.token, 'click', now);
    if (!claims) {
      notFound(reply);
      return;
    }
    const linkIndex = claims.linkIndex ?? -1;
    const cached = cache.cachedStaticTarget(claims.deliveryId, linkIndex, now);
    if (cached !== undefined) {
      redirect(request, reply, claims, cached, now);
      return;
    }
    return cache
      .clickTarget(claims.deliveryId, claims.logId, linkIndex, claims.occurrence ?? 0, now)
      .then((target) => redirect(request, reply, claims, target, now));
  });

  app.get<{ Params: { token: string } }>('/o/:token', async (request, reply) => {
    const now = clock.now();
    const claims = verified(request.params.token, 'open', now);
    if (claims) record(request, 'open', claims, now, null);
    // A GIF whatever the token: a broken-image icon in an old message helps nobody.
    return reply
      .code(200)
      .header('content-type', 'image/gif')
      .header('cache-control', 'no-store, no-cache, must-revalidate, max-age=0')
      .header('pragma', 'no-cache')
      .header('expires', '0')
      .send(transparentGif);
  });

  app.get<{ Params: { token: string } }>('/m/:token', async (request, reply) => {
    const now = clock.now();
    const claims = verified(request.params.token, 'mirror', now);
    if (!claims) return notFound(reply);
    const page = await cache.mirrorPage(claims.deliveryId, claims.logId, now);
    if (page === undefined) return notFound(reply);
    record(request, 'mirror', claims, now, null);
    return html(reply, 200, page, mirrorPolicy);
  });

  app.get<{ Params: { token: string } }>('/u/:token', async (request, reply) => {
    const claims = verified(request.params.token, 'unsubscribe', clock.now());
    return claims ? html(reply, 200, unsubscribeConfirmPage) : notFound(reply);
  });

  app.post<{ Params: { token: string } }>('/u/:token', async (request, reply) => {
    const now = clock.now();
    const claims = verified(request.params.token, 'unsubscribe', now);
    if (!claims) return notFound(reply);
    // Not a one-click POST (no List-Unsubscribe=One-Click body): nobody is unsubscribed; a person who
    // got here gets the confirmation form, which sends the pair.
    if (!(await isOneClickBody(request.headers['content-type'], request.body)))
      return html(reply, 400, unsubscribeConfirmPage);
    // A replayed POST is answered the same, and records nothing more: once recorded, from memory.
    if (unsubscribedLogs.has(claims.logId)) return html(reply, 200, unsubscribedPage);
    const email = await cache.emailOf(claims.deliveryId, claims.logId);
    if (!email) return notFound(reply);
    await options.unsubscribe(email, eventOf(request, 'unsubscribe', claims, now, null));
    if (unsubscribedLogs.size >= maxUnsubscribedLogs) unsubscribedLogs.delete(unsubscribedLogs.values().next().value!);
    unsubscribedLogs.add(claims.logId);
    return html(reply, 200, unsubscribedPage);
  });

  return app;
}
