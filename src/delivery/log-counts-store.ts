import { sql } from 'kysely';
import type { Store } from '../store/database.ts';

// Folding the delivery log counters. PostgreSQL's triggers append one delta row per changed key and
// statement, so concurrent writers never wait on a counter row; readers sum a key's rows. A batch of
// outcomes over many recipient domains appends about two rows per message to delivery_domain_counts
// (a key left, a key entered), so the rows a reader sums grow with the sending: the delivery-manager
// workflow folds every delivery's counters every 5 minutes, and each MTA folds the crowded ones every
// few seconds while it sends (src/mta/queue-runner.ts).

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
 * appended meanwhile stay for the next fold, and two processes folding at once never count a row
 * twice (a row deleted by one is skipped by the other). SQLite keeps one row per key already:
 * nothing to fold.
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
