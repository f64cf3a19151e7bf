import type { Kysely } from 'kysely';

// Preparation reads a list in id order, batch by batch (`list_id = ? and id > ? order by id limit n`).
// Without this index the planner took the (list_id, email) index and sorted the whole list for every
// batch: quadratic in the list's size (a 1M-recipient preparation spent most of its time there).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('recipients_list_id_order').on('recipients').columns(['list_id', 'id']).execute();
}
