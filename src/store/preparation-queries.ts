import { sql } from 'kysely';
import type { PreparationCounts, PreparationStore, PreparedLog, TargetRecipient } from '../delivery/preparation.ts';
import type { Store } from './database.ts';
import { transitionDelivery } from './delivery-queries.ts';
import { replaceTrackingLinks } from './tracking-queries.ts';

const deleteBatchSize = 10_000;
// SQLite binds at most 32766 variables per statement; 8 columns × 2,000 rows stays well below.
const insertChunkSize = 2_000;

export function preparationStore(store: Store): PreparationStore {
  const { db } = store;
  return {
    beginPreparation: (deliveryId, now) => transitionDelivery(store, deliveryId, 'preparing', now, { last_error: null }),

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
      for (let i = 0; i < emails.length; i += insertChunkSize) {
        const rows = await db
          .selectFrom('addresses')
          .select(['email', 'state'])
          .where('email', 'in', emails.slice(i, i + insertChunkSize))
          .where('state', 'in', ['quarantined', 'denylisted'])
          .execute();
        for (const row of rows) blocked.set(row.email, row.state as 'quarantined' | 'denylisted');
      }
      return blocked;
    },

    async insertLogs(deliveryId, logs: PreparedLog[], now) {
      if (logs.length === 0) return 0;
      return db.transaction().execute(async (trx) => {
        let inserted = 0;
        for (let i = 0; i < logs.length; i += insertChunkSize) {
          const rows = logs.slice(i, i + insertChunkSize).map((log) => ({
            delivery_id: deliveryId,
            recipient_id: log.recipientId,
            email: log.email,
            domain: log.domain,
            data: log.data,
            status: 'pending' as const,
            attempts: 0,
            next_attempt_at: 0,
            updated_at: now,
          }));
          const result = await trx
            .insertInto('delivery_logs')
            .values(rows)
            .onConflict((oc) => oc.columns(['delivery_id', 'email']).doNothing())
            .executeTakeFirst();
          inserted += Number(result.numInsertedOrUpdatedRows ?? 0);
        }
        return inserted;
      });
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
