import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { DeliveryDomainCountTable, DeliveryRow, DeliveryState } from '../store/tables.ts';

// The reads behind the dashboard's delivery pages (docs/dashboard.md), the doctor and the ETA:
// deliveries filtered by state and name, their log counts in one grouped query, a delivery's
// throughput per minute, its last outcome, its due messages, its logs by recipient domain, and its
// failures grouped the ways an operator asks about them. Counts come from counters kept by triggers.

export interface DeliverySearch {
  state?: DeliveryState | undefined;
  /** Case-insensitive part of the name. */
  name?: string | undefined;
  /** Only deliveries of a lower id: the next page of a list in descending id order (keyset). */
  beforeId?: number | undefined;
  limit: number;
}

export async function searchDeliveries(store: Store, search: DeliverySearch): Promise<DeliveryRow[]> {
  let query = store.db.selectFrom('deliveries').selectAll().orderBy('id', 'desc').limit(search.limit);
  query = search.state === undefined ? query.where('state', '!=', 'deleted') : query.where('state', '=', search.state);
  if (search.beforeId !== undefined) query = query.where('id', '<', search.beforeId);
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
 * after an attempt) by the minute of their last change, from the counters of migration 0029 (a few
 * rows per minute).
 */
export async function throughputByMinute(store: Store, deliveryId: number): Promise<ThroughputMinute[]> {
  const rows = await store.db
    .selectFrom('delivery_minute_counts')
    .select(['minute', 'outcome', (eb) => eb.fn.sum<string | number>('n').as('n')])
    .where('delivery_id', '=', deliveryId)
    .groupBy(['minute', 'outcome'])
    .orderBy('minute')
    .execute();
  const byMinute = new Map<number, ThroughputMinute>();
  for (const row of rows) {
    const minute = Number(row.minute) * 60_000;
    const entry = byMinute.get(minute) ?? { minute, sent: 0, failed: 0, deferred: 0 };
    entry[row.outcome] += Number(row.n);
    byMinute.set(minute, entry);
  }
  // PostgreSQL's unfolded deltas can sum to zero for a minute whose logs all moved on.
  return [...byMinute.values()].filter((m) => m.sent !== 0 || m.failed !== 0 || m.deferred !== 0);
}

/**
 * End of the last minute in which one of the delivery's logs got the outcome it still has (sent,
 * failed, or deferred), capped at `now`; null before the first outcome. From the counters of
 * migration 0029: the most recent outcome is always still counted, as its log's latest change.
 */
export async function lastOutcomeAt(store: Store, deliveryId: number, now: number): Promise<number | null> {
  const row = await store.db
    .selectFrom('delivery_minute_counts')
    .select('minute')
    .where('delivery_id', '=', deliveryId)
    .groupBy('minute')
    .having((eb) => eb.fn.sum('n'), '<>', 0)
    .orderBy('minute', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? null : Math.min(now, (Number(row.minute) + 1) * 60_000);
}

/** A delivery's pending logs whose next attempt is due (index delivery_logs_pending_due). */
export async function countDuePending(store: Store, deliveryId: number, now: number): Promise<number> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .where('delivery_id', '=', deliveryId)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export interface DomainCount {
  domain: string;
  /** `pending`: never tried yet; `deferred`: pending after an attempt (both include claimed logs). */
  outcome: DeliveryDomainCountTable['outcome'];
  mxHost: string | null;
  count: number;
}

/** A delivery's logs by recipient domain, outcome and MX host, from the counters of migration 0033. */
export async function countLogsByDomain(store: Store, deliveryId: number): Promise<DomainCount[]> {
  const rows = await store.db
    .selectFrom('delivery_domain_counts')
    .select(['domain', 'outcome', 'mx_host', (eb) => eb.fn.sum<string | number>('n').as('n')])
    .where('delivery_id', '=', deliveryId)
    .groupBy(['domain', 'outcome', 'mx_host'])
    .execute();
  // PostgreSQL's unfolded deltas can sum to zero for a key whose logs all moved on.
  return rows
    .filter((row) => Number(row.n) !== 0)
    .map((row) => ({ domain: row.domain, outcome: row.outcome, mxHost: row.mx_host || null, count: Number(row.n) }));
}

/**
 * The `limit` recipient domains with the most pending (or sending) logs of a delivery, most first
 * (then by name), and the MX hosts this delivery met for each: chosen in the database from the
 * counters of migration 0033. The doctor asks it of every delivery in progress; reading every
 * domain's counts into the process to keep 20 cost ~0.25 s per delivery of 50,000 domains.
 */
export async function topPendingDomains(
  store: Store,
  deliveryId: number,
  limit = 20,
): Promise<Array<{ domain: string; pending: number; mxHosts: string[] }>> {
  // Names compared by code point on both dialects (PostgreSQL would otherwise use the database's collation).
  const byName = store.dialect === 'postgres' ? sql`domain collate "C"` : sql`domain`;
  const top = await store.db
    .selectFrom('delivery_domain_counts')
    .select(['domain', (eb) => eb.fn.sum<string | number>('n').as('n')])
    .where('delivery_id', '=', deliveryId)
    .where('outcome', 'in', ['pending', 'deferred'])
    .groupBy('domain')
    .having((eb) => eb.fn.sum('n'), '>', 0)
    .orderBy(sql`sum(n)`, 'desc')
    .orderBy(byName)
    .limit(limit)
    .execute();
  if (top.length === 0) return [];
  const hosts = await store.db
    .selectFrom('delivery_domain_counts')
    .select(['domain', 'mx_host'])
    .where('delivery_id', '=', deliveryId)
    .where(
      'domain',
      'in',
      top.map((row) => row.domain),
    )
    .where('mx_host', '!=', '')
    .groupBy(['domain', 'outcome', 'mx_host'])
    .having((eb) => eb.fn.sum('n'), '<>', 0)
    .execute();
  const hostsOf = new Map<string, Set<string>>();
  for (const row of hosts) hostsOf.set(row.domain, (hostsOf.get(row.domain) ?? new Set()).add(row.mx_host));
  return top.map((row) => ({
    domain: row.domain,
    pending: Number(row.n),
    mxHosts: [...(hostsOf.get(row.domain) ?? [])].sort(),
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

/**
 * A delivery's failed logs by type/reason/category, by recipient domain and by MX host (top `limit`
 * each), from the counters of migration 0029: one row per distinct failure key, not per log.
 */
export async function failureBreakdown(store: Store, deliveryId: number, limit: number): Promise<FailureBreakdown> {
  const count = sql<string | number>`sum(n)`;
  const top = <C extends 'failure_type' | 'failure_reason' | 'failure_category' | 'domain' | 'mx_host'>(columns: C[]) =>
    store.db
      .selectFrom('delivery_failure_counts')
      .select([...columns, count.as('n')])
      .where('delivery_id', '=', deliveryId)
      .groupBy(columns)
      .having(count, '>', 0)
      .orderBy(sql`${sql.lit(columns.length + 1)}`, 'desc')
      .limit(limit)
      .execute();
  const orNull = (value: string) => (value === '' ? null : value);
  const [reasons, domains, hosts] = await Promise.all([
    top(['failure_type', 'failure_reason', 'failure_category']),
    top(['domain']),
    top(['mx_host']),
  ]);
  return {
    byReason: reasons.map((r) => ({
      key: {
        type: orNull(r.failure_type),
        reason: orNull(r.failure_reason),
        category: orNull(r.failure_category),
      },
      count: Number(r.n),
    })),
    byDomain: domains.map((r) => ({ key: { domain: r.domain }, count: Number(r.n) })),
    byMxHost: hosts.map((r) => ({ key: { mxHost: orNull(r.mx_host) }, count: Number(r.n) })),
  };
}
