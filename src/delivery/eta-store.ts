import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import { countLogsByDomain } from './progress-store.ts';

// The reads of a delivery's ETA: its logs counted by recipient domain (pending, sent, deferred, an
// MX host reached), and the MX hosts earlier deliveries reached for domains this one
// has not tried yet (the hourly delivery stats).

export interface DomainEtaRow {
  domain: string;
  pending: number;
  sent: number;
  deferred: number;
  mxHost: string | null;
}

/** Per recipient domain: pending (claimed included), sent and deferred logs, and an MX host reached (counters of migration 0033). */
export async function pendingByDomainForEta(store: Store, deliveryId: number): Promise<DomainEtaRow[]> {
  const byDomain = new Map<string, DomainEtaRow>();
  for (const count of await countLogsByDomain(store, deliveryId)) {
    const domain = byDomain.get(count.domain) ?? {
      domain: count.domain,
      pending: 0,
      sent: 0,
      deferred: 0,
      mxHost: null,
    };
    if (count.outcome === 'pending' || count.outcome === 'deferred') domain.pending += count.count;
    if (count.outcome === 'sent') domain.sent += count.count;
    if (count.outcome === 'deferred') domain.deferred += count.count;
    if (count.mxHost !== null && (domain.mxHost === null || count.mxHost > domain.mxHost)) domain.mxHost = count.mxHost;
    byDomain.set(count.domain, domain);
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
