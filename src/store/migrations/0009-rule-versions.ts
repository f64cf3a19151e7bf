import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// Rule-pack versions loaded by the deliverability-update workflow (docs/deliverability-update.md).
// One row per accepted content; `active` marks the version in force per kind, and a partial unique
// index makes "two active versions of one kind" impossible whatever races happen.
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('rule_versions'), dialect)
    .addColumn('kind', 'text', notNull)
    .addColumn('version', 'text', notNull)
    .addColumn('content', 'text', notNull)
    .addColumn('source', 'text', notNull)
    .addColumn('diff', 'text', notNull)
    .addColumn('replaces_id', bigint)
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', bigint, notNull)
    .addColumn('activated_at', bigint)
    .execute();
  await db.schema.createIndex('rule_versions_kind_id').on('rule_versions').columns(['kind', 'id']).execute();
  await sql`create unique index rule_versions_one_active on rule_versions (kind) where active = 1`.execute(db);
}
