import type { Kysely } from 'kysely';

// The raw tracking log loses its index on `at`: the retention purge finds its id range by a binary
// search over the primary key (events are appended in time order), and every event written no
// longer pays a second B-tree insert.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('tracking_events_at').ifExists().execute();
}
