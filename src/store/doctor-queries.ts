import { sql } from 'kysely';
import { finalDeliveryStates } from '../delivery/state-machine.ts';
import type { Store } from './database.ts';
import { finalLogStatuses } from './maintenance-queries.ts';
import type { DeliveryRow, DeliveryState } from './tables.ts';

// Read-only queries of `herald doctor` that no other command needed. Each one is bounded: the
// doctor must stay cheap on a database with hundreds of millions of delivery logs.

export type DoctorDeliveryRow = DeliveryRow & { execution_peer: string | null };

/** Deliveries not in a final state (not edited either: nothing can be wrong with a draft), plus `extraId`. */
export async function unfinishedDeliveries(store: Store, extraId?: number, limit = 200): Promise<DoctorDeliveryRow[]> {
  const states: DeliveryState[] = ['preparing', 'prepared', 'start_pending', 'in_progress', 'paused'];
  let query = store.db.selectFrom('deliveries').selectAll().where('state', 'in', states);
  if (extraId !== undefined) query = store.db.selectFrom('deliveries').selectAll().where((eb) => eb.or([eb('state', 'in', states), eb('id', '=', extraId)]));
  const rows = await query.orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({ ...row, execution_peer: (row as Partial<DoctorDeliveryRow>).execution_peer ?? null }));
}

export interface DeliveryLogFigures {
  byStatus: Record<string, number>;
  failedByReason: Record<string, number>;
  duePending: number;
  lastUpdateAt: number | null;
}

export async function deliveryLogFigures(store: Store, deliveryId: number, now: number): Promise<DeliveryLogFigures> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select([
      'status',
      'failure_reason',
      sql<number>`count(*)`.as('n'),
      sql<number>`sum(case when next_attempt_at <= ${now} then 1 else 0 end)`.as('due'),
      sql<number | null>`max(updated_at)`.as('last'),
    ])
    .where('delivery_id', '=', deliveryId)
    .groupBy(['status', 'failure_reason'])
    .execute();
  const byStatus: Record<string, number> = {};
  const failedByReason: Record<string, number> = {};
  let duePending = 0;
  let lastUpdateAt: number | null = null;
  for (const row of rows) {
    const n = Number(row.n);
    byStatus[row.status] = (byStatus[row.status] ?? 0) + n;
    if (row.status === 'failed') failedByReason[row.failure_reason ?? 'not_defined'] = (failedByReason[row.failure_reason ?? 'not_defined'] ?? 0) + n;
    if (row.status === 'pending') duePending += Number(row.due ?? 0);
    if (row.last !== null) lastUpdateAt = Math.max(lastUpdateAt ?? 0, Number(row.last));
  }
  return { byStatus, failedByReason, duePending, lastUpdateAt };
}

/** The recipient domains with the most pending logs, and the MX hosts this delivery met for each. */
export async function pendingDomains(store: Store, deliveryId: number, limit = 20): Promise<Array<{ domain: string; pending: number; mxHosts: string[] }>> {
  const top = await store.db
    .selectFrom('delivery_logs')
    .select(['domain', sql<number>`count(*)`.as('n')])
    .where('delivery_id', '=', deliveryId)
    .where('status', 'in', ['pending', 'sending'])
    .groupBy('domain')
    .orderBy(sql`count(*)`, 'desc')
    .orderBy('domain')
    .limit(limit)
    .execute();
  if (top.length === 0) return [];
  const hosts = await store.db
    .selectFrom('delivery_logs')
    .select(['domain', 'mx_host'])
    .distinct()
    .where('delivery_id', '=', deliveryId)
    .where(
      'domain',
      'in',
      top.map((row) => row.domain),
    )
    .where('mx_host', 'is not', null)
    .execute();
  return top.map((row) => ({
    domain: row.domain,
    pending: Number(row.n),
    mxHosts: hosts
      .filter((h) => h.domain === row.domain)
      .map((h) => h.mx_host!)
      .sort(),
  }));
}

/** Time of the oldest raw tracking event after the consolidation watermark (ids follow time). */
export async function oldestUnconsolidatedEventAt(store: Store, watermark: number): Promise<number | null> {
  const row = await store.db.selectFrom('tracking_events').select('at').where('id', '>', watermark).orderBy('id').limit(1).executeTakeFirst();
  return row ? Number(row.at) : null;
}

export async function oldestTrackingEventAt(store: Store): Promise<number | null> {
  const row = await store.db.selectFrom('tracking_events').select('at').orderBy('id').limit(1).executeTakeFirst();
  return row ? Number(row.at) : null;
}

/** Delivery logs the cleanup workflow would delete now (same conditions), counted up to `cap`. */
export async function purgeableDeliveryLogs(store: Store, before: number, cap: number): Promise<{ count: number; capped: boolean; oldestAt: number | null }> {
  const eligible = store.db
    .selectFrom('delivery_logs')
    .select(['id', 'updated_at'])
    .where('updated_at', '<', before)
    .where('status', 'in', finalLogStatuses)
    .where('delivery_id', 'in', (eb) => eb.selectFrom('deliveries').select('id').where('state', 'in', finalDeliveryStates));
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
    .withTables<{ mid_outbound_parts: { delivery_id: number; acked_at: number | null } }>()
    .selectFrom('mid_outbound_parts')
    .select(['delivery_id', sql<number | null>`max(acked_at)`.as('at')])
    .groupBy('delivery_id')
    .execute();
  return new Map(rows.filter((r) => r.at !== null).map((r) => [Number(r.delivery_id), Number(r.at)]));
}
