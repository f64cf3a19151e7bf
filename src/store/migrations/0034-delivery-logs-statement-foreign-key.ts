import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { replaceByStatementForeignKey } from './statement-foreign-key.ts';

// Preparation on PostgreSQL (issue 18): the foreign key from delivery_logs to deliveries checked every
// inserted log on its own, ~3 s of the server's CPU for 1M logs, on the path every batch waits for.
// It is enforced per statement instead, with the same guarantees (statement-foreign-key.ts).
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await replaceByStatementForeignKey(db, {
    table: 'delivery_logs',
    column: 'delivery_id',
    parent: 'deliveries',
    constraint: 'delivery_logs_delivery_id_fkey',
  });
}
