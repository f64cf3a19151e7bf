import type { Kysely } from 'kysely';
import { bigint, notNull } from './column-types.ts';

// A bounce mail's effects are applied once: the inbound role records each received message's
// identity (a hash over its envelope VERP ids, Message-ID and body) in the transaction that applies
// it, so a sender retrying after a 451, or resending the same report, changes nothing the second
// time. Rows older than the retry horizon are purged by cleanup's `purge-qualification-samples`
// step, by `received_at`.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('inbound_messages')
    .addColumn('identity', 'text', (column) => column.primaryKey())
    .addColumn('received_at', bigint, notNull)
    .execute();
  await db.schema.createIndex('inbound_messages_received_at').on('inbound_messages').column('received_at').execute();
}
