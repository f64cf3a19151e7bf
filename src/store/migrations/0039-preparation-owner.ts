import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

// A preparation taken over from a process frozen past its liveness lease (SIGSTOP, a paused VM) was
// told apart from the new one by nothing: when the old one woke it went on writing, and on finding
// the delivery prepared it deleted every log of it. Each preparation now holds the delivery under its
// own random id, and writes, renews and ends it only while it still does.
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('deliveries').addColumn('preparation_owner', 'text').execute();
}
