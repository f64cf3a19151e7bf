import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// Audience import: a staging table so an import is applied to its list only once the whole file has
// been read and checked (a failed import leaves the list untouched), and the message of each reject.
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('import_rows'), dialect)
    // No foreign key: PostgreSQL would run a referential check per staged row (a million of them);
    // the importer deletes its staged rows itself, on success and on failure.
    .addColumn('import_id', bigint, notNull)
    .addColumn('line', bigint, notNull)
    .addColumn('email', 'text', notNull)
    .addColumn('domain', 'text', notNull)
    .addColumn('data', 'text', notNull)
    .execute();
  // Staging is append-only (no unique index to maintain at 1M rows); the apply phase walks an
  // import's rows by id range and merges duplicate addresses there, the later row winning.
  await db.schema.createIndex('import_rows_import_id').on('import_rows').columns(['import_id', 'id']).execute();

  await db.schema.alterTable('import_rejects').addColumn('message', 'text').execute();
}
