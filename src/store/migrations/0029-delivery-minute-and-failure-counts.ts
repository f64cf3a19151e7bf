import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { type Counter, createCounter } from './log-counters.ts';

// The delivery page's live tick without reading delivery logs (issue 15, performance): its throughput
// chart (logs sent, failed and deferred per minute) and its failure groups (by type/reason/category,
// by recipient domain, by MX host) read counters kept by triggers, as migration 0028 keeps the status
// counts: whoever writes a log, its counters change in the same transaction, and the same way
// (SQLite: one upsert per changed key; PostgreSQL: statement triggers appending one delta row per key,
// folded later by the delivery-manager workflow, so concurrent writers never wait on a counter row).
// Each counter counts the logs that are in that state now, as the queries it replaces did:
// - delivery_minute_counts: `sent` by the minute of sent_at, `failed` by the minute of updated_at,
//   `deferred` (pending or sending after at least one attempt) by the minute of updated_at;
// - delivery_failure_counts: failed logs by type, reason, category, domain and MX host ('' for none).
// A log outside every counted state (pending and never tried, ignored, cancelled) writes nothing.

const deferredOf = (row: string) => `${row}.status in ('pending', 'sending') and ${row}.attempts > 0`;

const minuteCounter: Counter = {
  table: 'delivery_minute_counts',
  columns: ['outcome', 'minute'],
  keyOf: (row) => [
    `case when ${row}.status in ('sent', 'failed') then ${row}.status else 'deferred' end`,
    `(case when ${row}.status = 'sent' then coalesce(${row}.sent_at, ${row}.updated_at) else ${row}.updated_at end) / 60000`,
  ],
  counted: (row) => `(${row}.status in ('sent', 'failed') or (${deferredOf(row)}))`,
  watched: ['status', 'attempts', 'sent_at', 'updated_at'],
};

const failureCounter: Counter = {
  table: 'delivery_failure_counts',
  columns: ['failure_type', 'failure_reason', 'failure_category', 'domain', 'mx_host'],
  keyOf: (row) => [
    `coalesce(${row}.failure_type, '')`,
    `coalesce(${row}.failure_reason, '')`,
    `coalesce(${row}.failure_category, '')`,
    `${row}.domain`,
    `coalesce(${row}.mx_host, '')`,
  ],
  counted: (row) => `(${row}.status = 'failed')`,
  watched: ['status', 'failure_type', 'failure_reason', 'failure_category', 'domain', 'mx_host'],
};

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await createCounter(db, dialect, minuteCounter);
  await createCounter(db, dialect, failureCounter);
}
