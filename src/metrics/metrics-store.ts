import { sql } from 'kysely';
import type { Store } from '../store/database.ts';

// The bounded reads /metrics makes (cached between scrapes by platform-collector.ts).

export async function deliveriesByState(store: Store): Promise<Array<{ state: string; count: number }>> {
  const rows = await store.db
    .selectFrom('deliveries')
    .select(['state', sql<number>`count(*)`.as('count')])
    .groupBy('state')
    .execute();
  return rows.map((row) => ({ state: row.state, count: Number(row.count) }));
}

/** Pending delivery logs due now, per recipient domain: a range of the (status, next_attempt_at, domain) index, no table read (migration 0037). */
export async function dueByDomain(store: Store, now: number): Promise<Array<{ domain: string; count: number }>> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['domain', sql<number>`count(*)`.as('count')])
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .groupBy('domain')
    .execute();
  return rows.map((row) => ({ domain: row.domain, count: Number(row.count) }));
}
