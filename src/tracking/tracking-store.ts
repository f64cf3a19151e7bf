import { sql } from 'kysely';
import type { ConsolidationEvent, IndicatorRows } from './consolidate.ts';
import type { RawEvent } from './event-log.ts';
import type { ExtractedLink } from './links.ts';
import { inTransaction, type Store } from '../store/database.ts';

// Queries of the tracking feature: links per delivery, raw events, generated keys, unsubscribes,
// consolidation reads and indicator writes. One named function per query.

// SQLite binds at most 32766 variables per statement: 7 columns × 2,000 rows stays well below.
const insertChunk = 2_000;

export async function replaceTrackingLinks(
  store: Store,
  deliveryId: number,
  links: readonly ExtractedLink[],
): Promise<void> {
  await store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('tracking_links').where('delivery_id', '=', deliveryId).execute();
    for (let i = 0; i < links.length; i += insertChunk) {
      await trx
        .insertInto('tracking_links')
        .values(
          links.slice(i, i + insertChunk).map((l) => ({
            delivery_id: deliveryId,
            link_index: l.index,
            url_template: l.urlTemplate,
            label: l.label,
          })),
        )
        .execute();
    }
  });
}

export async function trackingLinks(
  store: Store,
  deliveryId: number,
): Promise<Array<{ index: number; urlTemplate: string; label: string }>> {
  const rows = await store.db
    .selectFrom('tracking_links')
    .select(['link_index', 'url_template', 'label'])
    .where('delivery_id', '=', deliveryId)
    .orderBy('link_index')
    .execute();
  return rows.map((r) => ({ index: Number(r.link_index), urlTemplate: r.url_template, label: r.label }));
}

export async function storedTrackingKeys(
  store: Store,
): Promise<Array<{ id: string; secret: string; createdAt: number }>> {
  const rows = await store.db
    .selectFrom('tracking_keys')
    .select(['id', 'secret', 'created_at'])
    .orderBy('created_at')
    .execute();
  return rows.map((r) => ({ id: r.id, secret: r.secret, createdAt: Number(r.created_at) }));
}

/** Inserts a generated key unless one with this id exists (two nodes starting together keep one). */
export async function insertTrackingKey(
  store: Store,
  key: { id: string; secret: string; createdAt: number },
): Promise<void> {
  await store.db
    .insertInto('tracking_keys')
    .values({ id: key.id, secret: key.secret, created_at: key.createdAt })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/** One batch of raw events in one statement group inside one transaction: the log holds whole batches only. */
export async function insertTrackingEvents(store: Store, events: readonly RawEvent[]): Promise<void> {
  if (events.length === 0) return;
  await inTransaction(store, (trx) => insertTrackingEventsWithin(trx, events));
}

/**
 * PostgreSQL hands out event ids before commit, and transactions commit out of order: a batch holding
 * id 100 may commit after one holding 101. Every transaction writing events holds this advisory
 * lock shared until it ends; the consolidation watermark is read holding it alone, when no write that
 * took an id is still in flight (any constant: it names the lock across every process of the cluster).
 */
const eventWritersLockKey = 0x74726b6576;

/**
 * The same inside a transaction the caller holds (`trx`, never the bare store: the writers' lock
 * lasts until that transaction ends), so the events commit with its other writes.
 */
export async function insertTrackingEventsWithin(trx: Store, events: readonly RawEvent[]): Promise<void> {
  if (events.length > 0 && trx.dialect === 'postgres')
    await sql`select pg_advisory_xact_lock_shared(${eventWritersLockKey})`.execute(trx.db);
  for (let i = 0; i < events.length; i += insertChunk) {
    await trx.db
      .insertInto('tracking_events')
      .values(
        events.slice(i, i + insertChunk).map((e) => ({
          delivery_id: e.deliveryId,
          log_id: e.logId,
          kind: e.kind,
          link_index: e.linkIndex,
          at: e.at,
          flags: e.flags,
          user_agent: e.userAgent,
        })),
      )
      .execute();
  }
}

export interface TrackedLog {
  id: number;
  deliveryId: number;
  email: string;
  data: string;
  /** When the message was sent (epoch ms), null before. */
  sentAt: number | null;
}

export async function trackedLog(store: Store, logId: number): Promise<TrackedLog | undefined> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select(['id', 'delivery_id', 'email', 'data', 'sent_at'])
    .where('id', '=', logId)
    .executeTakeFirst();
  return row
    ? {
        id: Number(row.id),
        deliveryId: Number(row.delivery_id),
        email: row.email,
        data: row.data,
        sentAt: row.sent_at === null ? null : Number(row.sent_at),
      }
    : undefined;
}

/** The first `limit` sent logs of a delivery, in id order (the demo's readers). */
export async function sentLogs(
  store: Store,
  deliveryId: number,
  limit: number,
): Promise<Array<{ id: number; sentAt: number | null }>> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['id', 'sent_at'])
    .where('delivery_id', '=', deliveryId)
    .where('status', '=', 'sent')
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ id: Number(row.id), sentAt: row.sent_at === null ? null : Number(row.sent_at) }));
}

export async function deliveryTemplates(
  store: Store,
  deliveryId: number,
): Promise<{ subject: string; html: string | null; text: string | null } | undefined> {
  const row = await store.db
    .selectFrom('deliveries')
    .select(['subject_template', 'html_template', 'text_template'])
    .where('id', '=', deliveryId)
    .executeTakeFirst();
  return row ? { subject: row.subject_template, html: row.html_template, text: row.text_template } : undefined;
}

// --- consolidation ---------------------------------------------------------------------------

const watermarkName = 'consolidated_event_id';

export async function consolidationWatermark(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('tracking_state')
    .select('value')
    .where('name', '=', watermarkName)
    .executeTakeFirst();
  return row ? Number(row.value) : 0;
}

export async function setConsolidationWatermark(store: Store, value: number): Promise<void> {
  await store.db
    .insertInto('tracking_state')
    .values({ name: watermarkName, value })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value }))
    .execute();
}

export async function lastTrackingEventId(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('tracking_events')
    .select(sql<number | null>`max(id)`.as('id'))
    .executeTakeFirst();
  return Number(row?.id ?? 0);
}

/**
 * The last event id below which every event is committed: how far the consolidation watermark may
 * move. SQLite has one writer at a time, so its ids are in commit order already; on PostgreSQL the id
 * is read once no transaction that took an event id is still open (eventWritersLockKey) — read
 * without waiting, a batch committing late was consolidated by no run (the watermark had moved past
 * its ids). The wait lasts as long as the longest batch insert in flight.
 */
export async function committedTrackingEventId(store: Store): Promise<number> {
  if (store.dialect === 'sqlite') return lastTrackingEventId(store);
  return inTransaction(store, async (trx) => {
    await sql`select pg_advisory_xact_lock(${eventWritersLockKey})`.execute(trx.db);
    return lastTrackingEventId(trx);
  });
}

/** When the first raw event after `afterId` happened (the oldest not consolidated); null when none. */
export async function firstEventAtAfter(store: Store, afterId: number): Promise<number | null> {
  const row = await store.db
    .selectFrom('tracking_events')
    .select('at')
    .where('id', '>', afterId)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  return row ? Number(row.at) : null;
}

export async function deliveriesWithEventsBetween(store: Store, afterId: number, upToId: number): Promise<number[]> {
  const rows = await store.db
    .selectFrom('tracking_events')
    .select('delivery_id')
    .distinct()
    .where('id', '>', afterId)
    .where('id', '<=', upToId)
    .orderBy('delivery_id')
    .execute();
  return rows.map((r) => Number(r.delivery_id));
}

/** The domain of an event whose delivery log was purged (a domain name has no parentheses). */
export const purgedLogDomain = '(purged)';

/** A page of a delivery's raw events in id order, with the recipient domain of each log. */
export async function deliveryEventsPage(
  store: Store,
  deliveryId: number,
  afterId: number,
  limit: number,
): Promise<ConsolidationEvent[]> {
  const rows = await store.db
    .selectFrom('tracking_events as e')
    .leftJoin('delivery_logs as l', 'l.id', 'e.log_id')
    .select(['e.id', 'e.log_id', 'e.kind', 'e.link_index', 'e.at', 'e.flags', 'l.domain'])
    .where('e.delivery_id', '=', deliveryId)
    .where('e.id', '>', afterId)
    .orderBy('e.id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: Number(r.id),
    logId: Number(r.log_id),
    kind: r.kind,
    linkIndex: r.link_index === null ? null : Number(r.link_index),
    at: Number(r.at),
    flags: Number(r.flags),
    domain: r.domain ?? purgedLogDomain,
  }));
}

export async function hasDeliveryIndicators(store: Store, deliveryId: number): Promise<boolean> {
  const row = await store.db
    .selectFrom('tracking_indicators')
    .select('delivery_id')
    .where('delivery_id', '=', deliveryId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function sentByDomain(store: Store, deliveryId: number): Promise<Map<string, number>> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['domain', sql<number>`count(*)`.as('n')])
    .where('delivery_id', '=', deliveryId)
    .where('status', '=', 'sent')
    .groupBy('domain')
    .execute();
  return new Map(rows.map((r) => [r.domain, Number(r.n)]));
}

// Serializes the replacement of one delivery's consolidated rows (two int4 keys: this class and the
// delivery id, wrapped past 2^31 — a rare shared key only makes two deliveries wait for each other).
const indicatorsLockClass = 0x74726b69;

/**
 * Replaces a delivery's consolidated rows in one transaction (recomputed from scratch each time). Two
 * recomputations of one delivery (the hourly run, `--refresh`, the dashboard) take turns: on
 * PostgreSQL the second one's delete did not see the first one's new rows, and its insert failed
 * on the primary key.
 */
export async function replaceDeliveryIndicators(
  store: Store,
  deliveryId: number,
  rows: IndicatorRows,
  now: number,
): Promise<void> {
  await store.db.transaction().execute(async (trx) => {
    if (store.dialect === 'postgres')
      await sql`select pg_advisory_xact_lock(${indicatorsLockClass}, ${deliveryId % 2 ** 31})`.execute(trx);
    await trx.deleteFrom('tracking_indicators').where('delivery_id', '=', deliveryId).execute();
    await trx.deleteFrom('tracking_link_stats').where('delivery_id', '=', deliveryId).execute();
    await trx.deleteFrom('tracking_domain_stats').where('delivery_id', '=', deliveryId).execute();
    await trx
      .insertInto('tracking_indicators')
      .values(
        rows.indicators.map((r) => ({
          delivery_id: deliveryId,
          scope: r.scope,
          sent: r.sent,
          unique_opens: r.uniqueOpens,
          total_opens: r.totalOpens,
          estimated_opens: r.estimatedOpens,
          unique_clickers: r.uniqueClickers,
          total_clicks: r.totalClicks,
          opt_outs: r.optOuts,
          mirror_views: r.mirrorViews,
          reactivity: r.reactivity,
          computed_at: now,
        })),
      )
      .execute();
    for (let i = 0; i < rows.links.length; i += insertChunk) {
      await trx
        .insertInto('tracking_link_stats')
        .values(
          rows.links.slice(i, i + insertChunk).map((r) => ({
            delivery_id: deliveryId,
            scope: r.scope,
            link_index: r.linkIndex,
            clicks: r.clicks,
            clickers: r.clickers,
          })),
        )
        .execute();
    }
    for (let i = 0; i < rows.domains.length; i += insertChunk) {
      await trx
        .insertInto('tracking_domain_stats')
        .values(
          rows.domains.slice(i, i + insertChunk).map((r) => ({
            delivery_id: deliveryId,
            scope: r.scope,
            domain: r.domain,
            sent: r.sent,
            openers: r.openers,
            clickers: r.clickers,
            clicks: r.clicks,
            opt_outs: r.optOuts,
          })),
        )
        .execute();
    }
  });
}

export async function deliveryIndicators(store: Store, deliveryId: number) {
  const [indicators, links, domains, linkRows] = await Promise.all([
    store.db
      .selectFrom('tracking_indicators')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .orderBy('scope')
      .execute(),
    store.db
      .selectFrom('tracking_link_stats')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .orderBy('link_index')
      .execute(),
    store.db
      .selectFrom('tracking_domain_stats')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .orderBy('domain')
      .execute(),
    trackingLinks(store, deliveryId),
  ]);
  return { indicators, links, domains, linkRows };
}

/**
 * The id range the retention purge walks: from the first event to the last one older than `before`.
 * Events are appended in time order (a batch retried after a failed write is at most a few seconds
 * late), so that last old event is found by a binary search over the primary key — some 25 point
 * reads for a billion events — and the raw log needs no index on `at`, which would cost every
 * written event an extra B-tree insert. A late event past the boundary waits for the next purge;
 * the window delete checks `at` itself.
 */
export async function trackingEventPurgeRange(
  store: Store,
  before: number,
): Promise<{ min: number; max: number } | undefined> {
  const bounds = await store.db
    .selectFrom('tracking_events')
    .select([sql<number | null>`min(id)`.as('first'), sql<number | null>`max(id)`.as('last')])
    .executeTakeFirst();
  if (bounds?.first == null || bounds.last == null) return undefined;
  // The first event at or after `id`; ids have gaps where earlier purges deleted.
  const eventFrom = async (id: number) => {
    const row = await store.db
      .selectFrom('tracking_events')
      .select(['id', 'at'])
      .where('id', '>=', id)
      .orderBy('id')
      .limit(1)
      .executeTakeFirstOrThrow();
    return { id: Number(row.id), at: Number(row.at) };
  };
  const first = await eventFrom(Number(bounds.first));
  if (first.at >= before) return undefined;
  // Invariant: the event `lastOld` is older than `before`; no event after `upper` is.
  let lastOld = first.id;
  let upper = Number(bounds.last);
  while (lastOld < upper) {
    const middle = lastOld + Math.ceil((upper - lastOld) / 2);
    const event = await eventFrom(middle);
    if (event.at < before) lastOld = event.id;
    else upper = middle - 1;
  }
  return { min: first.id, max: lastOld };
}

/** Raw events older than `before`, by id window (the cleanup workflow's bounded batches). */
export async function purgeTrackingEventsWindow(
  store: Store,
  fromId: number,
  toId: number,
  before: number,
): Promise<number> {
  const result = await store.db
    .deleteFrom('tracking_events')
    .where('id', '>=', fromId)
    .where('id', '<', toId)
    .where('at', '<', before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** The latest tracking events of a delivery flagged as automated (bots, scanners, proxies), with their user agent. */
export async function latestFlaggedEvents(
  store: Store,
  deliveryId: number,
  limit: number,
): Promise<Array<{ at: number; kind: string; flags: number; userAgent: string | null }>> {
  const rows = await store.db
    .selectFrom('tracking_events')
    .select(['at', 'kind', 'flags', 'user_agent'])
    .where('delivery_id', '=', deliveryId)
    .where('flags', '!=', 0)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    at: Number(row.at),
    kind: row.kind,
    flags: Number(row.flags),
    userAgent: row.user_agent,
  }));
}
