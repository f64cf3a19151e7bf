import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// Issue 4: the timeline of every address, the qualification table of replies no rule matched, and
// the inbound SMTP role's samples of messages it could not use (bounded, for the operator).
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('address_events'), dialect)
    .addColumn('email', 'text', notNull)
    .addColumn('at', bigint, notNull)
    .addColumn('source', 'text', notNull)
    .addColumn('delivery_id', bigint)
    .addColumn('delivery_log_id', bigint)
    .addColumn('reply_text', 'text')
    .addColumn('category', 'text')
    .addColumn('reason', 'text')
    .addColumn('type', 'text')
    .addColumn('rule_id', 'text')
    .addColumn('pack_version', 'text')
    .addColumn('state_before', 'text', notNull)
    .addColumn('state_after', 'text', notNull)
    .addColumn('error_count', 'integer', notNull)
    .addColumn('counted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('note', 'text')
    .execute();
  await db.schema.createIndex('address_events_email_at').on('address_events').columns(['email', 'at']).execute();

  await addIdColumn(db.schema.createTable('qualification_entries'), dialect)
    // sha-256 of code, status and normalized text: one entry per distinct reply shape.
    .addColumn('signature', 'text', (c) => c.notNull().unique())
    .addColumn('source', 'text', notNull)
    .addColumn('reply_code', 'integer')
    .addColumn('enhanced_status', 'text')
    .addColumn('pattern', 'text', notNull)
    .addColumn('example', 'text', notNull)
    .addColumn('example_log_id', bigint)
    .addColumn('count', bigint, notNull)
    .addColumn('first_seen_at', bigint, notNull)
    .addColumn('last_seen_at', bigint, notNull)
    .addColumn('status', 'text', notNull)
    .addColumn('rule_id', 'text')
    .addColumn('category', 'text')
    .addColumn('updated_at', bigint, notNull)
    .execute();
  await db.schema
    .createIndex('qualification_entries_status_count')
    .on('qualification_entries')
    .columns(['status', 'count'])
    .execute();

  await addIdColumn(db.schema.createTable('inbound_samples'), dialect)
    .addColumn('received_at', bigint, notNull)
    .addColumn('problem', 'text', notNull)
    .addColumn('detail', 'text', notNull)
    .addColumn('remote_address', 'text')
    .addColumn('mail_from', 'text')
    .addColumn('rcpt_to', 'text')
    .addColumn('size', bigint, notNull)
    .addColumn('truncated', 'integer', notNull)
    .addColumn('raw', 'text', notNull)
    .execute();
  await db.schema.createIndex('inbound_samples_received_at').on('inbound_samples').columns(['received_at']).execute();

  await db.schema
    .createTable('inbound_counters')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('count', bigint, notNull)
    .addColumn('last_at', bigint, notNull)
    .execute();
}
