import { sql, type Kysely } from 'kysely';

// Fair share of an MX path's budget between deliveries (issue 18): each delivery has a priority
// (0–9, higher first on a shared path) and a weight (1–100, its share among deliveries of the same
// priority), both changeable while it runs. The MTA claims each batch split between the deliveries
// with due messages, so it reads each one's oldest due logs: this index holds only pending logs, in
// (delivery, due time) order. A claim removes the entry, a deferral puts it back: the MTA's hot path
// writes no entry for a message sent at its first attempt beyond the one its claim removes.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('deliveries')
    .addColumn('priority', 'integer', (column) => column.notNull().defaultTo(5))
    .execute();
  await db.schema
    .alterTable('deliveries')
    .addColumn('weight', 'integer', (column) => column.notNull().defaultTo(1))
    .execute();
  await db.schema
    .createIndex('delivery_logs_pending_due')
    .on('delivery_logs')
    .columns(['delivery_id', 'next_attempt_at'])
    .where(sql.ref('status'), '=', sql.lit('pending'))
    .execute();
}
