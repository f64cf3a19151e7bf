import type { Store } from '../../store/database.ts';

// The delivery-manager workflow's storage: scheduled starts, the progress of deliveries in progress
// and the delay flags it raises on those that stalled.

/** Scheduled deliveries whose time has come start sending; validity counts from the actual start. */
export async function startScheduledDeliveries(store: Store, now: number): Promise<number[]> {
  const rows = await store.db
    .updateTable('deliveries')
    .set((eb) => ({
      state: 'in_progress',
      started_at: now,
      valid_until: eb(eb.val(now), '+', eb('validity_seconds', '*', 1000)),
      updated_at: now,
    }))
    .where('state', '=', 'start_pending')
    .where('scheduled_at', 'is not', null)
    .where('scheduled_at', '<=', now)
    .returning('id')
    .execute();
  return rows.map((r) => Number(r.id));
}

export interface DeliveryProgress {
  deliveryId: number;
  startedAt: number | null;
  /** Latest delivery log update, when one happened after `since`. */
  recentProgressAt: number | null;
}

export async function inProgressDeliveryProgress(store: Store, since: number): Promise<DeliveryProgress[]> {
  const deliveries = await store.db
    .selectFrom('deliveries')
    .select(['id', 'started_at'])
    .where('state', '=', 'in_progress')
    .execute();
  if (deliveries.length === 0) return [];
  // Served by delivery_logs_updated: only the last minutes of updates are read.
  const recent = await store.db
    .selectFrom('delivery_logs')
    .select(['delivery_id', (eb) => eb.fn.max('updated_at').as('at')])
    .where('updated_at', '>=', since)
    .where(
      'delivery_id',
      'in',
      deliveries.map((d) => d.id),
    )
    .groupBy('delivery_id')
    .execute();
  const recentBy = new Map(recent.map((r) => [Number(r.delivery_id), Number(r.at)]));
  return deliveries.map((d) => ({
    deliveryId: Number(d.id),
    startedAt: d.started_at,
    recentProgressAt: recentBy.get(Number(d.id)) ?? null,
  }));
}

export async function lastLogUpdate(store: Store, deliveryId: number): Promise<number | null> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select((eb) => eb.fn.max('updated_at').as('at'))
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirst();
  return row?.at === null || row?.at === undefined ? null : Number(row.at);
}

export async function flagDelayed(
  store: Store,
  deliveryId: number,
  lastProgressAt: number,
  now: number,
): Promise<boolean> {
  const result = await store.db
    .insertInto('delivery_delays')
    .values({ delivery_id: deliveryId, last_progress_at: lastProgressAt, flagged_at: now })
    .onConflict((oc) => oc.column('delivery_id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

/** Removes the flag of deliveries that progressed again or are no longer in progress. */
export async function clearDelayed(store: Store, keep: number[]): Promise<number> {
  let query = store.db.deleteFrom('delivery_delays');
  if (keep.length > 0) query = query.where('delivery_id', 'not in', keep);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function listDelayed(
  store: Store,
): Promise<Array<{ deliveryId: number; lastProgressAt: number; flaggedAt: number }>> {
  const rows = await store.db.selectFrom('delivery_delays').selectAll().orderBy('delivery_id').execute();
  return rows.map((r) => ({
    deliveryId: Number(r.delivery_id),
    lastProgressAt: Number(r.last_progress_at),
    flaggedAt: Number(r.flagged_at),
  }));
}
