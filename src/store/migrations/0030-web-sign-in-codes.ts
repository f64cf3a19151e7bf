import type { Kysely } from 'kysely';
import { bigint, notNull } from './column-types.ts';

// One-time sign-in codes for the dashboard (issue 15, `herald demo --keep-running`): a code signs in
// once, for a short time, as the API token it was made for, without that token ever being shown.
// Only the SHA-256 of a code is kept; signing in deletes it.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('web_sign_in_codes')
    .addColumn('code_hash', 'text', (column) => column.primaryKey())
    .addColumn('token_id', 'text', notNull)
    .addColumn('created_at', bigint, notNull)
    .addColumn('expires_at', bigint, notNull)
    .execute();
}
