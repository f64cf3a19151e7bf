import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// A client that timed out on POST /api/v1/deliveries and retried created the delivery twice. A
// request with an Idempotency-Key now records the key (per token) with the hash of its body and the
// delivery it created, in the transaction that creates it: a retry, even a concurrent one, answers
// with that delivery. Keys are forgotten after a day (api/idempotency.ts).
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('api_idempotency_keys'), dialect)
    .addColumn('token_id', 'text', notNull)
    .addColumn('idempotency_key', 'text', notNull)
    .addColumn('route', 'text', notNull)
    .addColumn('request_hash', 'text', notNull)
    .addColumn('resource_id', bigint, notNull)
    .addColumn('created_at', bigint, notNull)
    .addUniqueConstraint('api_idempotency_keys_token_key', ['token_id', 'idempotency_key'])
    .execute();
  await db.schema
    .createIndex('api_idempotency_keys_created_at')
    .on('api_idempotency_keys')
    .column('created_at')
    .execute();
}
