import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import { postgresTableSpace, sqliteSpace } from '../workflows/maintenance-store.ts';

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

/**
 * The database's size and each table's dead rows (PostgreSQL's statistics; none on SQLite). Not
 * `herald db status`, which on SQLite reads every page of the file (dbstat) and counts every row of
 * every table, on the event loop of the process serving /metrics: the size is two pragmas.
 */
export async function databaseSize(
  store: Store,
): Promise<{ sizeBytes: number; tables: Array<{ name: string; deadRows: number | null }> }> {
  if (store.dialect === 'sqlite') {
    const space = await sqliteSpace(store);
    return { sizeBytes: space.pageCount * space.pageSize, tables: [] };
  }
  const { tables, databaseBytes } = await postgresTableSpace(store);
  return { sizeBytes: databaseBytes, tables: tables.map((t) => ({ name: t.name, deadRows: t.deadRows })) };
}
