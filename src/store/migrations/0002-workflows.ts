import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// Technical workflows: one row per workflow (pause state, last handled schedule slot, the lease that
// keeps two nodes from running it at once), its runs, their steps and step logs; plus the tables the
// built-in workflows write (delayed deliveries, hourly sending stats, maintenance history).

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('workflows')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('paused_at', bigint)
    .addColumn('last_due_at', bigint)
    .addColumn('lease_holder', 'text')
    .addColumn('lease_expires_at', bigint)
    .addColumn('created_at', bigint, notNull)
    .addColumn('updated_at', bigint, notNull)
    .execute();

  await addIdColumn(db.schema.createTable('workflow_runs'), dialect)
    .addColumn('workflow', 'text', notNull)
    .addColumn('status', 'text', notNull)
    .addColumn('trigger', 'text', notNull)
    .addColumn('holder', 'text', notNull)
    .addColumn('scheduled_for', bigint)
    .addColumn('missed_slots', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('start_step', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('restart_of', bigint)
    .addColumn('failed_step', 'integer')
    .addColumn('error', 'text')
    .addColumn('started_at', bigint, notNull)
    .addColumn('finished_at', bigint)
    .execute();
  await db.schema.createIndex('workflow_runs_workflow').on('workflow_runs').columns(['workflow', 'id']).execute();
  await db.schema.createIndex('workflow_runs_status').on('workflow_runs').columns(['status']).execute();

  await addIdColumn(db.schema.createTable('workflow_steps'), dialect)
    .addColumn('run_id', bigint, (c) => c.notNull().references('workflow_runs.id').onDelete('cascade'))
    .addColumn('step_index', 'integer', notNull)
    .addColumn('name', 'text', notNull)
    .addColumn('status', 'text', notNull)
    .addColumn('summary', 'text')
    .addColumn('error', 'text')
    .addColumn('started_at', bigint, notNull)
    .addColumn('finished_at', bigint)
    .addUniqueConstraint('workflow_steps_run_index', ['run_id', 'step_index'])
    .execute();

  await addIdColumn(db.schema.createTable('workflow_step_logs'), dialect)
    .addColumn('run_id', bigint, (c) => c.notNull().references('workflow_runs.id').onDelete('cascade'))
    .addColumn('step_index', 'integer', notNull)
    .addColumn('level', 'text', notNull)
    .addColumn('message', 'text', notNull)
    .addColumn('at', bigint, notNull)
    .execute();
  await db.schema.createIndex('workflow_step_logs_run').on('workflow_step_logs').columns(['run_id', 'id']).execute();

  await db.schema
    .createTable('delivery_delays')
    .addColumn('delivery_id', bigint, (c) => c.primaryKey().references('deliveries.id').onDelete('cascade'))
    .addColumn('last_progress_at', bigint, notNull)
    .addColumn('flagged_at', bigint, notNull)
    .execute();

  await db.schema
    .createTable('delivery_stats_hourly')
    .addColumn('hour', bigint, notNull)
    .addColumn('delivery_id', bigint, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
    .addColumn('domain', 'text', notNull)
    // '' when the log has no MX host yet (failed before resolution).
    .addColumn('mx_host', 'text', notNull)
    .addColumn('sent', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('failed', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('deferred', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', bigint, notNull)
    .addPrimaryKeyConstraint('delivery_stats_hourly_pk', ['hour', 'delivery_id', 'domain', 'mx_host'])
    .execute();
  await db.schema
    .createIndex('delivery_stats_hourly_delivery')
    .on('delivery_stats_hourly')
    .columns(['delivery_id', 'hour'])
    .execute();

  await addIdColumn(db.schema.createTable('db_maintenance'), dialect)
    .addColumn('source', 'text', notNull)
    .addColumn('started_at', bigint, notNull)
    .addColumn('finished_at', bigint, notNull)
    .addColumn('summary', 'text', notNull)
    .addColumn('error', 'text')
    .execute();

  // Retention purges, the hourly stats and stalled-delivery detection all select logs by update time;
  // without it each of them scans the whole (largest) table.
  await db.schema.createIndex('delivery_logs_updated').on('delivery_logs').columns(['updated_at']).execute();
}
