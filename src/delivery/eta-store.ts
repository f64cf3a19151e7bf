import { sql } from 'kysely';
import type { Store } from '../store/database.ts';

// The reads of a delivery's ETA: one pass over its logs grouped by recipient domain (pending, sent,
// deferred, an MX host reached), and the MX hosts earlier deliveries reached for domains this one
// has not tried yet (the hourly delivery stats).

export interface DomainEtaRow {
  domain: string;
  pending: number;
  sent: number;
  deferred: number;
  mxHost: string | null;
}

export async function pendingByDomainForEta(store: Store, deliveryId: number): Promise<DomainEtaRow[]> {
  // Grouped in the order of the delivery_logs_delivery_summary index (migration 0027): the database
  // reads that index alone, in order; the few groups are folded per domain here.
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select([
      'status',
      'domain',
      'attempts',
      sql<number>`count(*)`.as('n'),
      sql<string | null>`max(mx_host)`.as('mx_host'),
    ])
    .where('delivery_id', '=', deliveryId)
    .groupBy(['status', 'domain', 'attempts'])
    .execute();
  const byDomain = new Map<string, DomainEtaRow>();
  for (const row of rows) {
    const domain = byDomain.get(row.domain) ?? { domain: row.domain, pending: 0, sent: 0, deferred: 0, mxHost: null };
    const n = Number(row.n);
    if (row.status === 'pending' || row.status === 'sending') domain.pending += n;
    if (row.status === 'sent') domain.sent += n;
    if (row.status === 'pending' && Number(row.attempts) > 0) domain.deferred += n;
    if (row.mx_host !== null && (domain.mxHost === null || row.mx_host > domain.mxHost)) domain.mxHost = row.mx_host;
    byDomain.set(row.domain, domain);
  }
  return [...byDomain.values()];
}

/** For each of `domains`, an MX host earlier deliveries reached (delivery_stats_hourly). */
export async function knownMxHosts(store: Store, domains: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < domains.length; i += 1_000) {
    const rows = await store.db
      .selectFrom('delivery_stats_hourly')
      .select(['domain', sql<string>`max(mx_host)`.as('mx_host')])
      .where('domain', 'in', domains.slice(i, i + 1_000))
      .where('mx_host', '!=', '')
      .groupBy('domain')
      .execute();
    for (const row of rows) if (row.mx_host) out.set(row.domain, row.mx_host);
  }
  return out;
}

export interface EarlierDelivery {
  id: number;
  affinity: string | null;
}

/**
 * Deliveries sending now (in progress) that started before `startedBefore` (all of them when null:
 * a delivery not started yet comes after every one sending): their messages are due earlier, so the
 * MTA, which claims by due time, sends them first. The `limit` latest ones.
 */
export async function deliveriesSendingBefore(
  store: Store,
  deliveryId: number,
  startedBefore: number | null,
  limit = 50,
): Promise<EarlierDelivery[]> {
  let query = store.db
    .selectFrom('deliveries')
    .select(['id', 'affinity'])
    .where('state', '=', 'in_progress')
    .where('id', '!=', deliveryId)
    .where('execution_peer', 'is', null);
  if (startedBefore !== null) query = query.where('started_at', '<', startedBefore);
  const rows = await query.orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({ id: Number(row.id), affinity: row.affinity }));
}
