import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// The dashboard's sessions (issue 15): signing in with an API token opens a session whose random id
// travels in an HttpOnly cookie. Only the SHA-256 of that id is kept, so a leaked database hands out
// no working session; the CSRF token of the session's forms is kept with it. A session ends at
// `expires_at`, when its token is revoked, or at sign-out (row deleted).
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('web_sessions'), dialect)
    .addColumn('session_hash', 'text', (column) => column.notNull().unique())
    .addColumn('token_id', 'text', notNull)
    .addColumn('csrf_token', 'text', notNull)
    .addColumn('created_at', bigint, notNull)
    .addColumn('expires_at', bigint, notNull)
    .execute();
  await db.schema.createIndex('web_sessions_expires_at').on('web_sessions').column('expires_at').execute();
}
