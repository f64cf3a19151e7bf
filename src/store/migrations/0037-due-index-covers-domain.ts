import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

// /metrics counts the pending logs due now by recipient domain (herald_queue_due): a range of
// delivery_logs_due (status, next_attempt_at), then a read of the table row of each log for its
// domain: ~260 ms on SQLite and ~90 ms on PostgreSQL at 170,000 due logs, every metrics refresh.
// The index now carries the domain, so the count reads the index alone. A log's domain never
// changes, so no write updates the index that did not already (a claim or an outcome changes the
// status); the entries are wider, and the claim and the doctor still use its prefix.
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await sql`drop index if exists delivery_logs_due`.execute(db);
  await db.schema
    .createIndex('delivery_logs_due')
    .on('delivery_logs')
    .columns(['status', 'next_attempt_at', 'domain'])
    .execute();
}
