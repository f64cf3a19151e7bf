import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

// Preparation used to end in `prepared` or `preparation_failed` and nothing between: a link recipient
// data turned into javascript: (removed from those messages, src/tracking/rendered-href.ts) was a
// fact the operator never saw. The warnings of the last preparation are kept with the delivery (JSON).
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('deliveries')
    .addColumn('preparation_warnings', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
}
