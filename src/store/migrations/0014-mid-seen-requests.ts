import type { Kysely } from 'kysely';
import { bigint, notNull } from './column-types.ts';

// Mid-sourcing replay protection that survives a restart and holds across several execution processes
// on one database: every accepted signed request's (peer, nonce), inserted once (the primary key makes
// "insert, or reject as a replay" atomic). Rows older than the replay window are purged by the cleanup
// workflow's `purge-mid-seen-requests` step, by `seen_at`.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mid_seen_requests')
    .addColumn('peer', 'text', notNull)
    .addColumn('nonce', 'text', notNull)
    .addColumn('seen_at', bigint, notNull)
    .addPrimaryKeyConstraint('mid_seen_requests_pk', ['peer', 'nonce'])
    .execute();
  await db.schema.createIndex('mid_seen_requests_seen_at').on('mid_seen_requests').column('seen_at').execute();
}
