import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { bigint } from './column-types.ts';

// Audience import (docs/audience.md):
// - imports.updated_at: when a running import last made progress (each staged batch and each applied
//   range renews it), so the cleanup workflow can tell an import whose process died from a slow one.
// - PostgreSQL: import_rows is scratch data, written once and deleted by the import itself. Unlogged,
//   it costs no WAL (a million-row import wrote ~340 MB of it); a server crash empties it, which only
//   loses the staged rows of imports that were running, and those are failed by the cleanup workflow.
//   Rows are only ever found by (import_id, id), so the primary key's index is one index too many.
//   (SQLite keeps the table as it is: its id is the rowid, which costs nothing.)
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema.alterTable('imports').addColumn('updated_at', bigint).execute();
  await sql`update imports set updated_at = coalesce(finished_at, started_at)`.execute(db);
  if (dialect === 'postgres') {
    await sql`alter table import_rows drop constraint import_rows_pkey`.execute(db);
    await sql`alter table import_rows set unlogged`.execute(db);
  }
}
