import { sql } from 'kysely';
import type { PreparationCounts, PreparationStore, TargetRange, TargetRecipient } from '../delivery/preparation.ts';
import type { Store } from './database.ts';
import { transitionDelivery } from './delivery-queries.ts';
import { replaceTrackingLinks } from './tracking-queries.ts';

const deleteBatchSize = 10_000;
// SQLite binds at most 32766 variables per statement.
const lookupChunkSize = 2_000;

export function preparationStore(store: Store): PreparationStore {
  const { db } = store;
  return {
    async beginPreparation(deliveryId, now) {
      const delivery = await transitionDelivery(store, deliveryId, 'preparing', now, { last_error: null });
      // A list freshly imported has no planner statistics yet; without them PostgreSQL reads the whole
      // rest of the list for every batch instead of walking the index (quadratic on a 1M list).
      if (store.dialect === 'postgres') await sql`analyze recipients`.execute(db);
      return delivery;
    },

    async deleteLogs(deliveryId) {
      for (;;) {
        const ids = db.selectFrom('delivery_logs').select('id').where('delivery_id', '=', deliveryId).limit(deleteBatchSize);
        const result = await db.deleteFrom('delivery_logs').where('id', 'in', ids).executeTakeFirst();
        if (Number(result.numDeletedRows) < deleteBatchSize) return;
      }
    },

    async targetBatch(listId, afterId, limit): Promise<TargetRecipient[]> {
      return db
        .selectFrom('recipients')
        .select(['id', 'email', 'domain', 'data'])
        .where('list_id', '=', listId)
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute();
    },

    async blockedAddresses(emails) {
      const blocked = new Map<string, 'quarantined' | 'denylisted'>();
      for (let i = 0; i < emails.length; i += lookupChunkSize) {
        const rows = await db
          .selectFrom('addresses')
          .select(['email', 'state'])
          .where('email', 'in', emails.slice(i, i + lookupChunkSize))
          .where('state', 'in', ['quarantined', 'denylisted'])
          .execute();
        for (const row of rows) blocked.set(row.email, row.state as 'quarantined' | 'denylisted');
      }
      return blocked;
    },

    // INSERT ... SELECT: the rows are copied inside the database, one short statement per batch
    // (ids and times are integers this code produced, so they are inlined as literals; PostgreSQL
    // cannot type bare parameters in a select list).
    async insertLogs(deliveryId, range: TargetRange, now) {
      let source = db
        .selectFrom('recipients')
        .select([
          sql<number>`${sql.lit(deliveryId)}`.as('delivery_id'),
          'id',
          'email',
          'domain',
          'data',
          sql<string>`${sql.lit('pending')}`.as('status'),
          sql<number>`${sql.lit(0)}`.as('attempts'),
          sql<number>`${sql.lit(0)}`.as('next_attempt_at'),
          sql<number>`${sql.lit(now)}`.as('updated_at'),
        ])
        .where('list_id', '=', range.listId)
        .where('id', '>', range.afterId)
        .where('id', '<=', range.lastId);
      if (range.excludedIds.length > 0) source = source.where('id', 'not in', range.excludedIds);
      const result = await db
        .insertInto('delivery_logs')
        .columns(['delivery_id', 'recipient_id', 'email', 'domain', 'data', 'status', 'attempts', 'next_attempt_at', 'updated_at'])
        .expression(source)
        .onConflict((oc) => oc.columns(['delivery_id', 'email']).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0);
    },

    async finishPreparation(deliveryId, counts: PreparationCounts, now) {
      const excluded = Object.values(counts.excluded).reduce((a, b) => a + b, 0);
      await transitionDelivery(store, deliveryId, 'prepared', now, {
        target_count: counts.target,
        excluded_count: excluded,
        exclusions: JSON.stringify(counts.excluded),
        prepared_at: now,
      });
    },

    async failPreparation(deliveryId, error, now) {
      await transitionDelivery(store, deliveryId, 'preparation_failed', now, { last_error: error.slice(0, 4_000) });
    },

    replaceTrackingLinks: (deliveryId, links) => replaceTrackingLinks(store, deliveryId, links),
  };
}

/** Number of logs of a delivery (used by tests and the CLI). */
export async function countLogs(store: Store, deliveryId: number): Promise<number> {
  const row = await store.db.selectFrom('delivery_logs').select(sql<number>`count(*)`.as('n')).where('delivery_id', '=', deliveryId).executeTakeFirstOrThrow();
  return Number(row.n);
}
