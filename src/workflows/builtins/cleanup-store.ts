import type { Store } from '../../store/database.ts';
import type { DeliveryLogStatus, DeliveryState } from '../../store/tables.ts';

// The cleanup workflow's purges. Every purge works on a bounded slice (an id window or a LIMIT), one
// short transaction each, so the MTA's writes are never queued behind one huge delete.

export const finalLogStatuses: DeliveryLogStatus[] = ['sent', 'failed', 'ignored', 'cancelled'];
const finalDeliveryStates: DeliveryState[] = ['finished', 'stopped', 'failed', 'preparation_failed', 'deleted'];

export async function idRange(
  store: Store,
  table: 'delivery_logs' | 'import_rejects' | 'address_events' | 'inbound_samples',
): Promise<{ min: number; max: number } | undefined> {
  const row = await store.db
    .selectFrom(table)
    .select((eb) => [eb.fn.min('id').as('min'), eb.fn.max('id').as('max')])
    .executeTakeFirst();
  if (!row || row.min === null || row.max === null) return undefined;
  return { min: Number(row.min), max: Number(row.max) };
}

/** Final logs of finished deliveries, last updated before `before`, with ids in [from, to). */
export async function purgeDeliveryLogsWindow(store: Store, from: number, to: number, before: number): Promise<number> {
  const result = await store.db
    .deleteFrom('delivery_logs')
    .where('id', '>=', from)
    .where('id', '<', to)
    .where('updated_at', '<', before)
    .where('status', 'in', finalLogStatuses)
    .where('delivery_id', 'in', (eb) =>
      eb.selectFrom('deliveries').select('id').where('state', 'in', finalDeliveryStates),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Tables purged by age alone, with the column that dates their rows. */
const agedRowTimes = { import_rejects: 'created_at', address_events: 'at', inbound_samples: 'received_at' } as const;
export type AgedRowsTable = keyof typeof agedRowTimes;

/**
 * Rows of `table` dated before `before`, with ids in [from, to): import rejects, address timeline
 * rows (the states stay in `addresses`), inbound samples (unusable or for-review messages).
 */
export async function purgeAgedRowsWindow(
  store: Store,
  table: AgedRowsTable,
  from: number,
  to: number,
  before: number,
): Promise<number> {
  const result = await store.db
    .deleteFrom(table)
    .where('id', '>=', from)
    .where('id', '<', to)
    .where(store.db.dynamic.ref(agedRowTimes[table]), '<', before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Qualification entries nobody decided on (`to_qualify`) and not seen since `before`; entries an
 * operator kept or ignored are decisions and stay. At most `limit` rows.
 */
export async function purgeStaleQualificationEntries(store: Store, before: number, limit: number): Promise<number> {
  const result = await store.db
    .deleteFrom('qualification_entries')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('qualification_entries')
        .select('id')
        .where('status', '=', 'to_qualify')
        .where('last_seen_at', '<', before)
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function deletedDeliveriesBefore(store: Store, before: number): Promise<number[]> {
  const rows = await store.db
    .selectFrom('deliveries')
    .select('id')
    .where('state', '=', 'deleted')
    .where('updated_at', '<', before)
    .orderBy('id')
    .execute();
  return rows.map((r) => Number(r.id));
}

/** Deletes up to `limit` logs of one delivery; the caller loops until 0 before deleting the delivery itself. */
export async function deleteDeliveryLogsBatch(store: Store, deliveryId: number, limit: number): Promise<number> {
  const result = await store.db
    .deleteFrom('delivery_logs')
    .where('id', 'in', (eb) =>
      eb.selectFrom('delivery_logs').select('id').where('delivery_id', '=', deliveryId).limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function deleteDeliveryRow(store: Store, deliveryId: number): Promise<void> {
  await store.db.deleteFrom('deliveries').where('id', '=', deliveryId).where('state', '=', 'deleted').execute();
}

/** Past its validity a delivery sends nothing more, whether in progress or paused (resuming it would only fail every message as expired). */
const expiringStates: DeliveryState[] = ['in_progress', 'paused'];

export async function expiredDeliveries(store: Store, now: number): Promise<number[]> {
  const rows = await store.db
    .selectFrom('deliveries')
    .select('id')
    .where('state', 'in', expiringStates)
    .where('valid_until', 'is not', null)
    .where('valid_until', '<', now)
    .orderBy('id')
    .execute();
  return rows.map((r) => Number(r.id));
}

export async function finishExpiredDelivery(store: Store, deliveryId: number, now: number): Promise<boolean> {
  const result = await store.db
    .updateTable('deliveries')
    .set({ state: 'finished', finished_at: now, updated_at: now })
    .where('id', '=', deliveryId)
    .where('state', 'in', expiringStates)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
