import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

// A maintenance run was recorded only when it ended: one killed midway (kill -9, an OOM kill, a
// reboot) left no trace. Its row is now written when it starts (state `running`, the step it is at,
// the process that runs it) and completed at the end; finished_at holds the last progress meanwhile.
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('db_maintenance')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('done'))
    .execute();
  await db.schema.alterTable('db_maintenance').addColumn('step', 'text').execute();
  await db.schema.alterTable('db_maintenance').addColumn('owner', 'text').execute();
}
