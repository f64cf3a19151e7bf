import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// Mid-sourcing (docs/midsourcing.md). Marketing side: which deliveries were handed to an execution
// instance, and the state of each pushed part (so a restarted push resumes). Execution side: the
// deliveries received from each peer, the parts received (a duplicate part is acknowledged, not
// inserted again), and a change log of delivery-log outcomes read by the marketing side with a
// server-side cursor.
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  // Marketing side: set when the delivery is pushed; the local MTA never claims such a delivery.
  await db.schema.alterTable('deliveries').addColumn('execution_peer', 'text').execute();
  // Execution side: the marketing delivery log this one was received for.
  await db.schema.alterTable('delivery_logs').addColumn('source_log_id', bigint).execute();

  await db.schema
    .createTable('mid_outbound_deliveries')
    .addColumn('delivery_id', bigint, (c) => c.primaryKey().references('deliveries.id').onDelete('cascade'))
    .addColumn('peer', 'text', notNull)
    .addColumn('remote_id', bigint)
    .addColumn('state', 'text', notNull)
    .addColumn('parts_total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('recipients', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('log_cursor', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('logs_complete', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('logs_synced_at', bigint)
    .addColumn('logs_applied', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('remote_state', 'text')
    .addColumn('counters', 'text')
    .addColumn('counters_at', bigint)
    .addColumn('last_error', 'text')
    .addColumn('last_error_at', bigint)
    .addColumn('push_started_at', bigint)
    .addColumn('finalized_at', bigint)
    .addColumn('created_at', bigint, notNull)
    .addColumn('updated_at', bigint, notNull)
    .execute();

  await db.schema
    .createTable('mid_outbound_parts')
    .addColumn('delivery_id', bigint, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
    .addColumn('part_number', 'integer', notNull)
    .addColumn('first_log_id', bigint, notNull)
    .addColumn('last_log_id', bigint, notNull)
    .addColumn('recipients', 'integer', notNull)
    .addColumn('state', 'text', notNull)
    .addColumn('part_key', 'text')
    .addColumn('bytes', 'integer')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('timeouts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('build_ms', 'integer')
    .addColumn('latency_ms', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('acked_at', bigint)
    .addColumn('updated_at', bigint, notNull)
    .addPrimaryKeyConstraint('mid_outbound_parts_pk', ['delivery_id', 'part_number'])
    .execute();

  await db.schema
    .createTable('mid_inbound_deliveries')
    .addColumn('delivery_id', bigint, (c) => c.primaryKey().references('deliveries.id').onDelete('cascade'))
    .addColumn('peer', 'text', notNull)
    .addColumn('source_delivery_id', bigint, notNull)
    .addColumn('parts_expected', 'integer', notNull)
    .addColumn('recipients_expected', bigint, notNull)
    .addColumn('finalized_at', bigint)
    .addColumn('created_at', bigint, notNull)
    .addUniqueConstraint('mid_inbound_deliveries_source', ['peer', 'source_delivery_id'])
    .execute();

  await db.schema
    .createTable('mid_inbound_parts')
    .addColumn('delivery_id', bigint, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
    .addColumn('part_number', 'integer', notNull)
    .addColumn('part_key', 'text', notNull)
    .addColumn('recipients', 'integer', notNull)
    .addColumn('inserted', 'integer', notNull)
    .addColumn('received_at', bigint, notNull)
    .addPrimaryKeyConstraint('mid_inbound_parts_pk', ['delivery_id', 'part_number'])
    .execute();

  // No foreign keys: rows are appended by a trigger on the MTA's outcome writes (hot path).
  await addIdColumn(db.schema.createTable('mid_log_changes'), dialect)
    .addColumn('delivery_id', bigint, notNull)
    .addColumn('log_id', bigint, notNull)
    // Null until published: see publishLogChanges() in src/midsourcing/inbound-store.ts.
    .addColumn('seq', bigint)
    .execute();
  await db.schema
    .createIndex('mid_log_changes_delivery_seq')
    .on('mid_log_changes')
    .columns(['delivery_id', 'seq'])
    .execute();
  await db.schema
    .createIndex('mid_log_changes_unpublished')
    .on('mid_log_changes')
    .column('id')
    .where(sql.ref('seq'), 'is', null)
    .execute();

  // Capture every outcome of a received delivery in the same transaction that writes it (the MTA's
  // code is unaware of mid-sourcing). Claims (pending → sending) and releases (sending → pending,
  // same attempts) are not outcomes and are skipped.
  if (dialect === 'sqlite') {
    await sql`
      create trigger mid_log_changes_capture after update of status, attempts on delivery_logs
      for each row
      when (new.attempts <> old.attempts or (new.status <> old.status and new.status not in ('sending', 'pending')))
        and exists (select 1 from mid_inbound_deliveries m where m.delivery_id = new.delivery_id)
      begin
        insert into mid_log_changes (delivery_id, log_id) values (new.delivery_id, new.id);
      end`.execute(db);
  } else {
    await sql`create sequence mid_log_change_seq`.execute(db);
    await sql`
      create function mid_capture_log_change() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from mid_inbound_deliveries m where m.delivery_id = new.delivery_id) then
          insert into mid_log_changes (delivery_id, log_id) values (new.delivery_id, new.id);
        end if;
        return null;
      end $$`.execute(db);
    await sql`
      create trigger mid_log_changes_capture after update of status, attempts on delivery_logs
      for each row
      when (new.attempts <> old.attempts or (new.status <> old.status and new.status not in ('sending', 'pending')))
      execute function mid_capture_log_change()`.execute(db);
  }
}
