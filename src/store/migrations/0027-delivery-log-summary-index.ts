import { sql, type Kysely } from 'kysely';

// A delivery's figures (doctor, delivery watch, herald start's progress, the ETA) are counts of its
// logs by status, domain, attempts, MX host and failure reason, with the due ones and the last
// change. Read from the table, that is a scan of every row of the delivery (seconds at 1M logs);
// this index holds those columns, so the grouped pass reads the index alone, in order. It replaces
// delivery_logs_delivery_status, its prefix: an outcome or a claim changes the status, so it moved
// that index's entry already; the other columns change in the same updates, so the MTA's hot path
// makes no more index writes than before (only wider entries).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('delivery_logs_delivery_summary')
    .on('delivery_logs')
    .columns([
      'delivery_id',
      'status',
      'domain',
      'attempts',
      'mx_host',
      'failure_reason',
      'next_attempt_at',
      'updated_at',
    ])
    .execute();
  await sql`drop index if exists delivery_logs_delivery_status`.execute(db);
}
