import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// Tracking: links per delivery, the raw event log, generated keys, consolidated indicators.

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('tracking_links')
    .addColumn('delivery_id', bigint, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
    .addColumn('link_index', 'integer', notNull)
    .addColumn('url_template', 'text', notNull)
    .addColumn('label', 'text', notNull)
    .addPrimaryKeyConstraint('tracking_links_pk', ['delivery_id', 'link_index'])
    .execute();

  // No foreign keys: the log is append-only and written in batches; a purged delivery's events are
  // removed by the cleanup workflow, not by a cascade on the hot path.
  await addIdColumn(db.schema.createTable('tracking_events'), dialect)
    .addColumn('delivery_id', bigint, notNull)
    .addColumn('log_id', bigint, notNull)
    .addColumn('kind', 'text', notNull)
    .addColumn('link_index', 'integer')
    .addColumn('at', bigint, notNull)
    .addColumn('flags', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('user_agent', 'text')
    .execute();
  await db.schema
    .createIndex('tracking_events_delivery')
    .on('tracking_events')
    .columns(['delivery_id', 'id'])
    .execute();
  await db.schema.createIndex('tracking_events_at').on('tracking_events').columns(['at']).execute();

  await db.schema
    .createTable('tracking_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('secret', 'text', notNull)
    .addColumn('created_at', bigint, notNull)
    .execute();

  await db.schema
    .createTable('tracking_indicators')
    .addColumn('delivery_id', bigint, notNull)
    .addColumn('scope', 'text', notNull)
    .addColumn('sent', bigint, notNull)
    .addColumn('unique_opens', bigint, notNull)
    .addColumn('total_opens', bigint, notNull)
    .addColumn('estimated_opens', bigint, notNull)
    .addColumn('unique_clickers', bigint, notNull)
    .addColumn('total_clicks', bigint, notNull)
    .addColumn('opt_outs', bigint, notNull)
    .addColumn('mirror_views', bigint, notNull)
    .addColumn('reactivity', 'real', notNull)
    .addColumn('computed_at', bigint, notNull)
    .addPrimaryKeyConstraint('tracking_indicators_pk', ['delivery_id', 'scope'])
    .execute();

  await db.schema
    .createTable('tracking_link_stats')
    .addColumn('delivery_id', bigint, notNull)
    .addColumn('scope', 'text', notNull)
    .addColumn('link_index', 'integer', notNull)
    .addColumn('clicks', bigint, notNull)
    .addColumn('clickers', bigint, notNull)
    .addPrimaryKeyConstraint('tracking_link_stats_pk', ['delivery_id', 'scope', 'link_index'])
    .execute();

  await db.schema
    .createTable('tracking_domain_stats')
    .addColumn('delivery_id', bigint, notNull)
    .addColumn('scope', 'text', notNull)
    .addColumn('domain', 'text', notNull)
    .addColumn('sent', bigint, notNull)
    .addColumn('openers', bigint, notNull)
    .addColumn('clickers', bigint, notNull)
    .addColumn('clicks', bigint, notNull)
    .addColumn('opt_outs', bigint, notNull)
    .addPrimaryKeyConstraint('tracking_domain_stats_pk', ['delivery_id', 'scope', 'domain'])
    .execute();

  await db.schema
    .createTable('tracking_state')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', bigint, notNull)
    .execute();
}
