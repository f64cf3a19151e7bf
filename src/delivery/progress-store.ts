import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { DeliveryRow, DeliveryState } from '../store/tables.ts';

// The reads behind the dashboard's delivery pages (docs/dashboard.md): deliveries filtered by state
// and name, their log counts in one grouped query, a delivery's throughput per minute, and its
// failures grouped the ways an operator asks about them.

export interface DeliverySearch {
  state?: DeliveryState | undefined;
  /** Case-insensitive part of the name. */
  name?: string | undefined;
  limit: number;
}

export async function searchDeliveries(store: Store, search: DeliverySearch): Promise<DeliveryRow[]> {
  let query = store.db.selectFrom('deliveries').selectAll().orderBy('id', 'desc').limit(search.limit);
  query = search.state === undefined ? query.where('state', '!=', 'deleted') : query.where('state', '=', search.state);
  if (search.name !== undefined && search.name !== '') {
    const pattern = `%${search.name.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    query = query.where(sql<boolean>`lower(name) like ${pattern} escape '\\'`);
  }
  return query.execute();
}

export interface StatusCounts {
  pending: number;
  sent: number;
  failed: number;
  ignored: number;
  cancelled: number;
  total: number;
}

/**
 * Log counts of several deliveries at once (the deliveries list), from the counts the triggers of
 * migration 0028 keep (`sending` is counted as `pending` there): a few rows per delivery.
 */
export async function countLogsByDelivery(store: Store, ids: readonly number[]): Promise<Map<number, StatusCounts>> {
  const out = new Map<number, StatusCounts>();
  if (ids.length === 0) return out;
  const rows = await store.db
    .selectFrom('delivery_log_counts')
    .select(['delivery_id', 'status', (eb) => eb.fn.sum<string | number>('n').as('n')])
    .where('delivery_id', 'in', [...ids])
    .groupBy(['delivery_id', 'status'])
    .execute();
  for (const row of rows) {
    const id = Number(row.delivery_id);
    const counts = out.get(id) ?? { pending: 0, sent: 0, failed: 0, ignored: 0, cancelled: 0, total: 0 };
    const n = Number(row.n);
    const status = row.status === 'sending' ? 'pending' : row.status;
    counts[status] += n;
    counts.total += n;
    out.set(id, counts);
  }
  return out;
}

export interface ThroughputMinute {
  /** Start of the minute, ms since the epoch. */
  minute: number;
  sent: number;
  failed: number;
  /** Logs still pending after a deferral, by the minute of their last attempt. */
  deferred: number;
}

/**
 * Messages per minute of one delivery: accepted by `sent_at`, failed and deferred (still pending
 * after an attempt) by the minute of their last change. One grouped pass over the delivery's logs.
 */
export async function throughputByMinute(store: Store, deliveryId: number): Promise<ThroughputMinute[]> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select([
      sql<number>`(case when status = 'sent' then sent_at else updated_at end) / 60000`.as('minute'),
      sql<number>`sum(case when status = 'sent' then 1 else 0 end)`.as('sent'),
      sql<number>`sum(case when status = 'failed' then 1 else 0 end)`.as('failed'),
      sql<number>`sum(case when status in ('pending', 'sending') then 1 else 0 end)`.as('deferred'),
    ])
    .where('delivery_id', '=', deliveryId)
    .where((eb) =>
      eb.or([
        eb('status', 'in', ['sent', 'failed']),
        eb.and([eb('status', 'in', ['pending', 'sending']), eb('attempts', '>', 0)]),
      ]),
    )
    .groupBy(sql`1`)
    .orderBy(sql`1`)
    .execute();
  return rows.map((row) => ({
    minute: Number(row.minute) * 60_000,
    sent: Number(row.sent),
    failed: Number(row.failed),
    deferred: Number(row.deferred),
  }));
}

export interface FailureGroup {
  key: Record<string, string | null>;
  count: number;
}

export interface FailureBreakdown {
  byReason: FailureGroup[];
  byDomain: FailureGroup[];
  byMxHost: FailureGroup[];
}

/** A delivery's failed logs by type/reason/category, by recipient domain and by MX host (top `limit` each). */
export async function failureBreakdown(store: Store, deliveryId: number, limit: number): Promise<FailureBreakdown> {
  const failed = () =>
    store.db.selectFrom('delivery_logs').where('delivery_id', '=', deliveryId).where('status', '=', 'failed');
  const count = sql<number>`count(*)`;
  const [reasons, domains, hosts] = await Promise.all([
    failed()
      .select(['failure_type', 'failure_reason', 'failure_category', count.as('n')])
      .groupBy(['failure_type', 'failure_reason', 'failure_category'])
      .orderBy(sql`4`, 'desc')
      .limit(limit)
      .execute(),
    failed()
      .select(['domain', count.as('n')])
      .groupBy('domain')
      .orderBy(sql`2`, 'desc')
      .limit(limit)
      .execute(),
    failed()
      .select(['mx_host', count.as('n')])
      .groupBy('mx_host')
      .orderBy(sql`2`, 'desc')
      .limit(limit)
      .execute(),
  ]);
  return {
    byReason: reasons.map((r) => ({
      key: { type: r.failure_type, reason: r.failure_reason, category: r.failure_category },
      count: Number(r.n),
    })),
    byDomain: domains.map((r) => ({ key: { domain: r.domain }, count: Number(r.n) })),
    byMxHost: hosts.map((r) => ({ key: { mxHost: r.mx_host }, count: Number(r.n) })),
  };
}
