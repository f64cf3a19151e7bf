import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { DeliveryRow, DeliveryState } from '../store/tables.ts';
import { finalLogStatuses } from '../workflows/builtins/cleanup-store.ts';

// Read-only queries of `herald doctor` that no other command needed. Each one is bounded: the
// doctor must stay cheap on a database with hundreds of millions of delivery logs.

/** How many unfinished deliveries the doctor reads, the newest first. */
export const unfinishedLimit = 200;

const unfinishedStates: DeliveryState[] = ['preparing', 'prepared', 'start_pending', 'in_progress', 'paused'];

/** Deliveries not in a final state (nor edited), however many. */
export async function countUnfinishedDeliveries(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('deliveries')
    .select(sql<number>`count(*)`.as('count'))
    .where('state', 'in', unfinishedStates)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/**
 * The `limit` newest deliveries not in a final state (not edited either: nothing can be wrong with a
 * draft), plus `extraId` whatever its age: the delivery asked about is read even when more than
 * `limit` newer ones are unfinished.
 */
export async function unfinishedDeliveries(
  store: Store,
  extraId?: number,
  limit = unfinishedLimit,
): Promise<DeliveryRow[]> {
  const rows = await store.db
    .selectFrom('deliveries')
    .selectAll()
    .where('state', 'in', unfinishedStates)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  if (extraId === undefined || rows.some((row) => Number(row.id) === extraId)) return rows;
  const extra = await store.db.selectFrom('deliveries').selectAll().where('id', '=', extraId).executeTakeFirst();
  return extra ? [...rows, extra] : rows;
}

/**
 * Deliveries that reached a final state (or failed preparation) since `since`: list health,
 * target and preparation problems are still worth reporting after the sending ended.
 */
export async function recentlyFinalDeliveries(store: Store, since: number, limit = 20): Promise<DeliveryRow[]> {
  const states: DeliveryState[] = ['finished', 'stopped', 'failed', 'preparation_failed'];
  return store.db
    .selectFrom('deliveries')
    .selectAll()
    .where('state', 'in', states)
    .where('updated_at', '>=', since)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

export interface ReplyGroupRow {
  status: 'pending' | 'failed';
  domain: string;
  mxHost: string | null;
  code: number | null;
  enhanced: string | null;
  reason: string | null;
  category: string | null;
  count: number;
  sample: string;
  lastAt: number;
}

/**
 * The last replies of a delivery's logs that are pending after an attempt or failed, grouped by
 * status, domain, MX host, code, enhanced status and qualification: the largest `limit` groups.
 */
export async function deliveryReplyGroups(store: Store, deliveryId: number, limit = 200): Promise<ReplyGroupRow[]> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select([
      'status',
      'domain',
      'mx_host',
      'last_reply_code',
      'last_enhanced_status',
      'failure_reason',
      'failure_category',
      sql<number>`count(*)`.as('n'),
      sql<string | null>`max(last_reply_text)`.as('sample'),
      sql<number>`max(updated_at)`.as('last'),
    ])
    .where('delivery_id', '=', deliveryId)
    .where('status', 'in', ['pending', 'failed'])
    // A pending log has a reply only once attempted: the index excludes the untried ones before any row is read.
    .where((eb) => eb.or([eb('status', '=', 'failed'), eb('attempts', '>', 0)]))
    .where((eb) => eb.or([eb('last_reply_code', 'is not', null), eb('last_reply_text', 'is not', null)]))
    .groupBy([
      'status',
      'domain',
      'mx_host',
      'last_reply_code',
      'last_enhanced_status',
      'failure_reason',
      'failure_category',
    ])
    .orderBy(sql`count(*)`, 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    status: row.status as 'pending' | 'failed',
    domain: row.domain,
    mxHost: row.mx_host,
    code: row.last_reply_code === null ? null : Number(row.last_reply_code),
    enhanced: row.last_enhanced_status,
    reason: row.failure_reason,
    category: row.failure_category,
    count: Number(row.n),
    sample: row.sample ?? '',
    lastAt: Number(row.last),
  }));
}

/** Complaints and unsubscribes recorded against each of these deliveries (address events). */
export async function deliveryFeedbackCounts(
  store: Store,
  deliveryIds: readonly number[],
): Promise<Map<number, { complaints: number; unsubscribes: number }>> {
  const out = new Map<number, { complaints: number; unsubscribes: number }>();
  if (deliveryIds.length === 0) return out;
  const rows = await store.db
    .selectFrom('address_events')
    .select(['delivery_id', 'source', sql<number>`count(*)`.as('n')])
    .where('delivery_id', 'in', [...deliveryIds])
    .where('source', 'in', ['complaint', 'unsubscribe'])
    .groupBy(['delivery_id', 'source'])
    .execute();
  for (const row of rows) {
    const id = Number(row.delivery_id);
    const entry = out.get(id) ?? { complaints: 0, unsubscribes: 0 };
    if (row.source === 'complaint') entry.complaints += Number(row.n);
    else entry.unsubscribes += Number(row.n);
    out.set(id, entry);
  }
  return out;
}

/** Time of the oldest raw tracking event after the consolidation watermark (ids follow time). */
export async function oldestUnconsolidatedEventAt(store: Store, watermark: number): Promise<number | null> {
  const row = await store.db
    .selectFrom('tracking_events')
    .select('at')
    .where('id', '>', watermark)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  return row ? Number(row.at) : null;
}

export async function oldestTrackingEventAt(store: Store): Promise<number | null> {
  const row = await store.db.selectFrom('tracking_events').select('at').orderBy('id').limit(1).executeTakeFirst();
  return row ? Number(row.at) : null;
}

/**
 * Delivery logs the cleanup workflow would delete now (final logs of deliveries in `finalStates`,
 * last updated before `before`), counted up to `cap`.
 */
export async function purgeableDeliveryLogs(
  store: Store,
  window: { before: number; finalStates: readonly DeliveryState[] },
  cap: number,
): Promise<{ count: number; capped: boolean; oldestAt: number | null }> {
  const eligible = store.db
    .selectFrom('delivery_logs')
    .select(['id', 'updated_at'])
    .where('updated_at', '<', window.before)
    .where('status', 'in', finalLogStatuses)
    .where('delivery_id', 'in', (eb) =>
      eb.selectFrom('deliveries').select('id').where('state', 'in', window.finalStates),
    );
  const counted = await store.db
    .selectFrom(eligible.limit(cap + 1).as('e'))
    .select(sql<number>`count(*)`.as('n'))
    .executeTakeFirst();
  const n = Number(counted?.n ?? 0);
  const oldest = await eligible.orderBy('updated_at').limit(1).executeTakeFirst();
  return { count: Math.min(n, cap), capped: n > cap, oldestAt: oldest ? Number(oldest.updated_at) : null };
}

/** Last time each pushed delivery got a part acknowledged. */
export async function lastPartAcks(store: Store): Promise<Map<number, number>> {
  const rows = await store.db
    .selectFrom('mid_outbound_parts')
    .select(['delivery_id', sql<number | null>`max(acked_at)`.as('at')])
    .groupBy('delivery_id')
    .execute();
  return new Map(rows.filter((r) => r.at !== null).map((r) => [Number(r.delivery_id), Number(r.at)]));
}

export interface ClaimFacts {
  node: string;
  /** Logs this node holds in `sending`. */
  claimed: number;
  /** Of those, the ones whose claim lease has expired (claimed_until before now). */
  expired: number;
  oldestClaimedUntil: number | null;
  /** Oldest time one of them was claimed or last changed. */
  oldestUpdatedAt: number | null;
}

/** Delivery logs held in `sending`, per claiming node (`sending` never survives a clean stop). */
export async function claimsByNode(store: Store, now: number): Promise<ClaimFacts[]> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select([
      'claimed_by',
      sql<number>`count(*)`.as('n'),
      sql<number>`sum(case when claimed_until < ${now} then 1 else 0 end)`.as('expired'),
      sql<number | null>`min(claimed_until)`.as('oldest_until'),
      sql<number | null>`min(updated_at)`.as('oldest_updated'),
    ])
    .where('status', '=', 'sending')
    .groupBy('claimed_by')
    .execute();
  return rows.map((row) => ({
    node: row.claimed_by ?? '(none)',
    claimed: Number(row.n),
    expired: Number(row.expired ?? 0),
    oldestClaimedUntil: row.oldest_until === null ? null : Number(row.oldest_until),
    oldestUpdatedAt: row.oldest_updated === null ? null : Number(row.oldest_updated),
  }));
}

/**
 * Per delivery sent by this instance: its pending logs due since before `before` (due since their
 * next attempt time, or the delivery's start when later), and the oldest due time.
 */
export async function overdueUnclaimed(
  store: Store,
  before: number,
  limit = 50,
): Promise<Array<{ deliveryId: number; count: number; oldestDueAt: number }>> {
  const rows = await store.db
    .selectFrom('delivery_logs as l')
    .innerJoin('deliveries as d', 'd.id', 'l.delivery_id')
    .select([
      'l.delivery_id',
      sql<number>`count(*)`.as('n'),
      sql<number>`min(l.next_attempt_at)`.as('oldest'),
      sql<number | null>`max(d.started_at)`.as('started'),
    ])
    .where('l.status', '=', 'pending')
    .where('l.next_attempt_at', '<', before)
    .where('d.state', '=', 'in_progress')
    .where('d.execution_peer', 'is', null)
    .where((eb) => eb.or([eb('d.started_at', 'is', null), eb('d.started_at', '<', before)]))
    .groupBy('l.delivery_id')
    .orderBy('l.delivery_id')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    deliveryId: Number(row.delivery_id),
    count: Number(row.n),
    oldestDueAt: Math.max(Number(row.oldest), Number(row.started ?? 0)),
  }));
}

/** Imports still `running` (a live one renews updated_at with every batch and on a timer), oldest first. */
export async function runningImports(
  store: Store,
  limit = 50,
): Promise<
  Array<{ id: number; fileName: string; list: string; readCount: number; startedAt: number; updatedAt: number }>
> {
  const rows = await store.db
    .selectFrom('imports as i')
    .innerJoin('lists as l', 'l.id', 'i.list_id')
    .select(['i.id', 'i.file_name', 'l.name', 'i.read_count', 'i.started_at', 'i.updated_at'])
    .where('i.state', '=', 'running')
    .orderBy('i.id')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    id: Number(row.id),
    fileName: row.file_name,
    list: row.name,
    readCount: Number(row.read_count),
    startedAt: Number(row.started_at),
    updatedAt: Number(row.updated_at ?? row.started_at),
  }));
}
