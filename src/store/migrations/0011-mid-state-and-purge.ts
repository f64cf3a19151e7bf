import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { bigint, notNull } from './column-types.ts';

// Mid-sourcing (docs/midsourcing.md):
// - An operator's pause, resume or stop on the marketing side is forwarded to the execution
//   instance as a versioned target state. Marketing side: the latest version and whether the peer
//   acknowledged it. Execution side: the highest version recorded (an older or repeated request
//   changes nothing) and one row per version received, with what it did.
// - mid_log_changes is purged once the consumer has read past a change and the change is older than
//   `midsourcing.logChangesRetentionDays`: the execution side records the cursor each logs request
//   sends (everything at or below it is applied on the marketing side) and when a change was published.
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('mid_outbound_deliveries')
    .addColumn('state_version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('mid_outbound_deliveries').addColumn('state_target', 'text').execute();
  await db.schema.alterTable('mid_outbound_deliveries').addColumn('state_changed_at', bigint).execute();
  await db.schema
    .alterTable('mid_outbound_deliveries')
    .addColumn('state_acked_version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('mid_outbound_deliveries').addColumn('state_acked_at', bigint).execute();
  await db.schema.alterTable('mid_outbound_deliveries').addColumn('state_outcome', 'text').execute();
  await db.schema.alterTable('mid_outbound_deliveries').addColumn('state_remote', 'text').execute();
  await db.schema
    .alterTable('mid_outbound_deliveries')
    .addColumn('state_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('mid_outbound_deliveries').addColumn('state_error', 'text').execute();

  await db.schema
    .alterTable('mid_inbound_deliveries')
    .addColumn('state_version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('mid_inbound_deliveries').addColumn('state_target', 'text').execute();
  await db.schema
    .alterTable('mid_inbound_deliveries')
    .addColumn('read_cursor', bigint, (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('mid_inbound_deliveries').addColumn('read_at', bigint).execute();

  await db.schema
    .createTable('mid_inbound_state_changes')
    .addColumn('delivery_id', bigint, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
    .addColumn('version', 'integer', notNull)
    .addColumn('target', 'text', notNull)
    .addColumn('from_state', 'text', notNull)
    // applied | already | held | final | superseded: a held change is applied at finalize, or superseded
    // by a later version received before it.
    .addColumn('outcome', 'text', notNull)
    .addColumn('received_at', bigint, notNull)
    .addColumn('applied_at', bigint)
    .addPrimaryKeyConstraint('mid_inbound_state_changes_pk', ['delivery_id', 'version'])
    .execute();

  await db.schema.alterTable('mid_log_changes').addColumn('published_at', bigint).execute();
}
