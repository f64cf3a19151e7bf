import { sql } from 'kysely';
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

// The counters kept by triggers on delivery_logs (migrations 0028, 0029, 0033) and their key columns.
const countTables = {
  delivery_log_counts: ['status', 'failure_reason', 'retried'],
  delivery_minute_counts: ['outcome', 'minute'],
  delivery_failure_counts: ['failure_type', 'failure_reason', 'failure_category', 'domain', 'mx_host'],
  delivery_domain_counts: ['domain', 'outcome', 'mx_host'],
} as const;

/**
 * Folds the delta rows PostgreSQL's triggers append to the delivery log counters (migrations 0028,
 * 0029, 0033) into one row per key, for deliveries with more than `threshold` rows in a counter. Each
 * delivery and counter is one statement: the deleted rows and their sum change together, and rows
 * appended meanwhile stay for the next fold. SQLite keeps one row per key already: nothing to fold.
 * Returns how many (delivery, counter) pairs were folded.
 */
export async function foldDeliveryLogCounts(store: Store, threshold = 64): Promise<number> {
  if (store.dialect !== 'postgres') return 0;
  let folded = 0;
  for (const [table, keyColumns] of Object.entries(countTables)) {
    const crowded = await store.db
      .selectFrom(table as keyof typeof countTables)
      .select('delivery_id')
      .groupBy('delivery_id')
      .having((eb) => eb.fn.countAll(), '>', threshold)
      .execute();
    const key = sql.join(keyColumns.map((column) => sql.ref(column)));
    for (const { delivery_id: deliveryId } of crowded) {
      await sql`
        with gone as (delete from ${sql.table(table)} where delivery_id = ${deliveryId} returning ${key}, n)
        insert into ${sql.table(table)} (delivery_id, ${key}, n)
        select ${deliveryId}, ${key}, sum(n) from gone group by ${key} having sum(n) <> 0`.execute(store.db);
    }
    folded += crowded.length;
  }
  return folded;
}
