import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('lists'), dialect)
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', bigint, notNull)
    .execute();

  await addIdColumn(db.schema.createTable('recipients'), dialect)
    .addColumn('list_id', bigint, (c) => c.notNull().references('lists.id').onDelete('cascade'))
    .addColumn('email', 'text', notNull)
    .addColumn('domain', 'text', notNull)
    .addColumn('data', 'text', notNull)
    .addColumn('created_at', bigint, notNull)
    .addColumn('updated_at', bigint, notNull)
    .addUniqueConstraint('recipients_list_email', ['list_id', 'email'])
    .execute();

  await addIdColumn(db.schema.createTable('imports'), dialect)
    .addColumn('list_id', bigint, (c) => c.notNull().references('lists.id').onDelete('cascade'))
    .addColumn('file_name', 'text', notNull)
    .addColumn('state', 'text', notNull)
    .addColumn('read_count', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('imported_count', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('updated_count', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('rejected_count', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('started_at', bigint, notNull)
    .addColumn('finished_at', bigint)
    .execute();

  await addIdColumn(db.schema.createTable('import_rejects'), dialect)
    .addColumn('import_id', bigint, (c) => c.notNull().references('imports.id').onDelete('cascade'))
    .addColumn('line', bigint, notNull)
    .addColumn('reason', 'text', notNull)
    .addColumn('excerpt', 'text', notNull)
    .addColumn('created_at', bigint, notNull)
    .execute();
  await db.schema.createIndex('import_rejects_import').on('import_rejects').columns(['import_id', 'line']).execute();

  await addIdColumn(db.schema.createTable('deliveries'), dialect)
    .addColumn('name', 'text', notNull)
    .addColumn('state', 'text', notNull)
    .addColumn('from_address', 'text', notNull)
    .addColumn('from_name', 'text')
    .addColumn('reply_to', 'text')
    .addColumn('subject_template', 'text', notNull)
    .addColumn('html_template', 'text')
    .addColumn('text_template', 'text')
    .addColumn('list_id', bigint, (c) => c.references('lists.id').onDelete('set null'))
    .addColumn('affinity', 'text')
    .addColumn('validity_seconds', bigint, notNull)
    .addColumn('valid_until', bigint)
    .addColumn('scheduled_at', bigint)
    .addColumn('target_count', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('excluded_count', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('exclusions', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('last_error', 'text')
    .addColumn('created_at', bigint, notNull)
    .addColumn('updated_at', bigint, notNull)
    .addColumn('prepared_at', bigint)
    .addColumn('started_at', bigint)
    .addColumn('finished_at', bigint)
    .execute();

  await addIdColumn(db.schema.createTable('delivery_logs'), dialect)
    .addColumn('delivery_id', bigint, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
    .addColumn('recipient_id', bigint)
    .addColumn('email', 'text', notNull)
    .addColumn('domain', 'text', notNull)
    .addColumn('data', 'text', notNull)
    .addColumn('status', 'text', notNull)
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', bigint, notNull)
    .addColumn('claimed_by', 'text')
    .addColumn('claimed_until', bigint)
    .addColumn('last_reply_code', 'integer')
    .addColumn('last_enhanced_status', 'text')
    .addColumn('last_reply_text', 'text')
    .addColumn('failure_type', 'text')
    .addColumn('failure_reason', 'text')
    .addColumn('failure_category', 'text')
    .addColumn('mx_host', 'text')
    .addColumn('sent_at', bigint)
    .addColumn('updated_at', bigint, notNull)
    .execute();
  // The MTA's claim query: due pending rows in time order.
  await db.schema.createIndex('delivery_logs_due').on('delivery_logs').columns(['status', 'next_attempt_at']).execute();
  // One log per address per delivery: preparation relies on it to merge duplicates without holding the target in memory.
  await db.schema
    .createIndex('delivery_logs_delivery_email')
    .on('delivery_logs')
    .columns(['delivery_id', 'email'])
    .unique()
    .execute();
  await db.schema
    .createIndex('delivery_logs_delivery_status')
    .on('delivery_logs')
    .columns(['delivery_id', 'status'])
    .execute();
  await db.schema
    .createIndex('delivery_logs_claimed_by')
    .on('delivery_logs')
    .columns(['claimed_by'])
    .where(sql.ref('claimed_by'), 'is not', null)
    .execute();

  await db.schema
    .createTable('addresses')
    .addColumn('email', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', notNull)
    .addColumn('error_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error_at', bigint)
    .addColumn('reason', 'text')
    .addColumn('updated_at', bigint, notNull)
    .execute();
}
