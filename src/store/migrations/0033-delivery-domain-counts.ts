import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { createCounter } from './log-counters.ts';

// Preparation with many recipient domains (issue 18): the summary index of migration 0027 (delivery,
// status, domain, …) put each batch of new logs into one index leaf per domain, so preparing 1M
// recipients of 500 domains took twice as long as of 50 (SQLite wrote that many pages per batch).
// Its readers now read counters instead: the doctor and `herald start` count by status from
// delivery_log_counts (0028), the last progress from delivery_minute_counts (0029), the due
// messages from delivery_logs_pending_due (0031), and the pending messages and MX hosts per
// recipient domain (the doctor's top domains, the ETA) from delivery_domain_counts, kept here:
// logs by domain, outcome and MX host ('' for none), where the outcome is `pending` (pending or
// sending, never tried), `deferred` (pending or sending after an attempt), `sent` or `failed`.
// A claim changes none of these keys, so it writes nothing. (delivery_id, status, attempts), the
// summary index's prefix, stays for the queries by status (finished deliveries, cancellation) and
// the doctor's reply groups (attempted logs only: the untried ones are skipped in the index).
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await createCounter(db, dialect, {
    table: 'delivery_domain_counts',
    columns: ['domain', 'outcome', 'mx_host'],
    keyOf: (row) => [
      `${row}.domain`,
      `case when ${row}.status in ('sent', 'failed') then ${row}.status when ${row}.attempts > 0 then 'deferred' else 'pending' end`,
      `coalesce(${row}.mx_host, '')`,
    ],
    // Two lists of two: SQLite builds a temporary table for every evaluation of a longer IN list,
    // which made this trigger cost ~4 µs per inserted log instead of ~1.
    counted: (row) => `(${row}.status in ('pending', 'sending') or ${row}.status in ('sent', 'failed'))`,
    watched: ['status', 'attempts', 'domain', 'mx_host'],
  });
  await db.schema
    .createIndex('delivery_logs_delivery_status_attempts')
    .on('delivery_logs')
    .columns(['delivery_id', 'status', 'attempts'])
    .execute();
  await sql`drop index if exists delivery_logs_delivery_summary`.execute(db);
}
