import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// The HTTP API (issue 14): its tokens, the audit of every state-changing call, and the index its
// delivery-log pages read.
// A token is `herald_<token_id>_<secret>`; only the SHA-256 of the whole token is kept, so a leaked
// database does not hand out working tokens. `token_id` is public (listed, used to revoke).
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('api_tokens'), dialect)
    .addColumn('token_id', 'text', (column) => column.notNull().unique())
    .addColumn('name', 'text', notNull)
    .addColumn('role', 'text', notNull)
    .addColumn('secret_hash', 'text', notNull)
    .addColumn('created_at', bigint, notNull)
    .addColumn('last_used_at', bigint)
    .addColumn('revoked_at', bigint)
    .execute();

  await addIdColumn(db.schema.createTable('api_audit'), dialect)
    .addColumn('at', bigint, notNull)
    .addColumn('token_id', 'text')
    .addColumn('role', 'text')
    .addColumn('method', 'text', notNull)
    .addColumn('route', 'text', notNull)
    .addColumn('path', 'text', notNull)
    .addColumn('status', 'integer', notNull)
    .addColumn('error_code', 'text')
    .addColumn('client', 'text')
    .execute();
  await db.schema.createIndex('api_audit_at').on('api_audit').column('at').execute();

  // The API pages a delivery's logs by id (keyset pagination): with (delivery_id, id) a page is an
  // index range scan whatever the delivery's size, where OFFSET or a count would read every log.
  await db.schema.createIndex('delivery_logs_delivery_id').on('delivery_logs').columns(['delivery_id', 'id']).execute();
}
