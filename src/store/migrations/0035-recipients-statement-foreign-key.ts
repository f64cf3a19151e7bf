import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { replaceByStatementForeignKey } from './statement-foreign-key.ts';

// Imports on PostgreSQL (issue 18): the foreign key from recipients to lists checked every applied
// row on its own, ~3 s of the server's CPU for a 1M-row import (a third of applying it). It is
// enforced per statement instead, with the same guarantees (statement-foreign-key.ts).
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await replaceByStatementForeignKey(db, {
    table: 'recipients',
    column: 'list_id',
    parent: 'lists',
    constraint: 'recipients_list_id_fkey',
  });
}
