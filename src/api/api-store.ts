import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type {
  ApiAuditRow,
  ApiAuditTable,
  ApiIdempotencyKeyRow,
  ApiIdempotencyKeyTable,
  ApiRole,
  ApiTokenRow,
} from '../store/tables.ts';
import type { Insertable } from 'kysely';

// The API's storage: its tokens and its audit trail (migration 0015), the Idempotency-Keys of its
// creates (0042). One function per query.

export async function insertToken(
  store: Store,
  token: { tokenId: string; name: string; role: ApiRole; secretHash: string; now: number },
): Promise<ApiTokenRow> {
  return store.db
    .insertInto('api_tokens')
    .values({
      token_id: token.tokenId,
      name: token.name,
      role: token.role,
      secret_hash: token.secretHash,
      created_at: token.now,
      last_used_at: null,
      revoked_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findToken(store: Store, tokenId: string): Promise<ApiTokenRow | undefined> {
  return store.db.selectFrom('api_tokens').selectAll().where('token_id', '=', tokenId).executeTakeFirst();
}

export async function listTokenRows(store: Store): Promise<ApiTokenRow[]> {
  return store.db.selectFrom('api_tokens').selectAll().orderBy('id').execute();
}

/** True when a live token was revoked now; false when it was unknown or already revoked. */
export async function revokeTokenRow(store: Store, tokenId: string, now: number): Promise<boolean> {
  const result = await store.db
    .updateTable('api_tokens')
    .set({ revoked_at: now })
    .where('token_id', '=', tokenId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** At most one write per token per `everyMs`: a busy client does not turn every read into a write. */
export async function touchToken(store: Store, tokenId: string, now: number, everyMs: number): Promise<void> {
  await store.db
    .updateTable('api_tokens')
    .set({ last_used_at: now })
    .where('token_id', '=', tokenId)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', now - everyMs)]))
    .execute();
}

export async function insertAudit(store: Store, entry: Insertable<ApiAuditTable>): Promise<void> {
  await store.db.insertInto('api_audit').values(entry).execute();
}

/** The newest audit entries first; `beforeId` pages backwards. */
export async function listAudit(store: Store, page: { beforeId?: number; limit: number }): Promise<ApiAuditRow[]> {
  let query = store.db.selectFrom('api_audit').selectAll().orderBy('id', 'desc').limit(page.limit);
  if (page.beforeId !== undefined) query = query.where('id', '<', page.beforeId);
  return query.execute();
}

export async function findIdempotencyKey(
  store: Store,
  tokenId: string,
  key: string,
): Promise<ApiIdempotencyKeyRow | undefined> {
  return store.db
    .selectFrom('api_idempotency_keys')
    .selectAll()
    .where('token_id', '=', tokenId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

/** Fails with a unique violation when the token already used the key (a concurrent duplicate). */
export async function insertIdempotencyKey(store: Store, row: Insertable<ApiIdempotencyKeyTable>): Promise<void> {
  await store.db.insertInto('api_idempotency_keys').values(row).execute();
}

export async function deleteIdempotencyKeysBefore(store: Store, before: number): Promise<void> {
  await store.db.deleteFrom('api_idempotency_keys').where('created_at', '<', before).execute();
}

export async function databaseReachable(store: Store): Promise<void> {
  await sql`select 1`.execute(store.db);
}
