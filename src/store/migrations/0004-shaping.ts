import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { bigint, notNull } from './column-types.ts';

// One row per MTA node: its latest shaping snapshot (paths, rules, backoffs, suspensions) as JSON,
// written every few seconds and read by `herald mx stats` from any process.
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('shaping_snapshots')
    .addColumn('node_id', 'text', (c) => c.primaryKey())
    .addColumn('taken_at', bigint, notNull)
    .addColumn('rules_version', 'text', notNull)
    .addColumn('data', 'text', notNull)
    .execute();
}
