import { sql } from 'kysely';
import type { Store } from '../../store/database.ts';
import type { DeliveryStatsHourlyTable } from '../../store/tables.ts';

// The stats workflow's storage: delivery logs aggregated per hour, delivery, domain and MX host into
// delivery_stats_hourly.

export const hourMs = 3_600_000;

export async function latestStatsHour(store: Store): Promise<number | null> {
  const row = await store.db
    .selectFrom('delivery_stats_hourly')
    .select((eb) => eb.fn.max('hour').as('hour'))
    .executeTakeFirst();
  return row?.hour === null || row?.hour === undefined ? null : Number(row.hour);
}

export type HourlyStatsRow = Omit<DeliveryStatsHourlyTable, 'updated_at'>;

/** Reads (no write lock) the per delivery/domain/MX counts of logs updated in [from, to). */
export async function aggregateLogsByHour(store: Store, from: number, to: number): Promise<HourlyStatsRow[]> {
  // A literal divisor: a bound parameter may be typed REAL/numeric, and then the division would not truncate.
  const result = await sql<HourlyStatsRow>`
    select (updated_at / ${sql.lit(hourMs)}) * ${sql.lit(hourMs)} as hour, delivery_id, domain, coalesce(mx_host, '') as mx_host,
      sum(case when status = 'sent' then 1 else 0 end) as sent,
      sum(case when status = 'failed' then 1 else 0 end) as failed,
      sum(case when status = 'pending' and attempts > 0 then 1 else 0 end) as deferred
    from delivery_logs
    where updated_at >= ${from} and updated_at < ${to}
    group by 1, 2, 3, 4`.execute(store.db);
  return result.rows.map((r) => ({
    ...r,
    hour: Number(r.hour),
    delivery_id: Number(r.delivery_id),
    sent: Number(r.sent),
    failed: Number(r.failed),
    deferred: Number(r.deferred),
  }));
}

/** Replaces the stats of hours [from, to) with `rows`, in one transaction of aggregate rows only. */
export async function replaceStatsHours(
  store: Store,
  from: number,
  to: number,
  rows: HourlyStatsRow[],
  now: number,
): Promise<void> {
  await store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('delivery_stats_hourly').where('hour', '>=', from).where('hour', '<', to).execute();
    for (let i = 0; i < rows.length; i += 500) {
      const slice = rows.slice(i, i + 500).filter((r) => r.sent + r.failed + r.deferred > 0);
      if (slice.length > 0)
        await trx
          .insertInto('delivery_stats_hourly')
          .values(slice.map((r) => ({ ...r, updated_at: now })))
          .execute();
    }
  });
}

export async function statsForHours(store: Store, from: number, to: number): Promise<HourlyStatsRow[]> {
  return store.db
    .selectFrom('delivery_stats_hourly')
    .select(['hour', 'delivery_id', 'domain', 'mx_host', 'sent', 'failed', 'deferred'])
    .where('hour', '>=', from)
    .where('hour', '<', to)
    .orderBy('hour')
    .orderBy('delivery_id')
    .orderBy('domain')
    .orderBy('mx_host')
    .execute();
}
