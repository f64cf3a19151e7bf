import type { Store } from '../store/database.ts';
import type { ApiRole } from '../store/tables.ts';

// The dashboard's storage: its sessions (migration 0026) and one-time sign-in codes (0030). One
// function per query.

export interface LiveSession {
  sessionId: number;
  tokenId: string;
  name: string;
  role: ApiRole;
  csrfToken: string;
  expiresAt: number;
}

export async function insertSession(
  store: Store,
  session: { sessionHash: string; tokenId: string; csrfToken: string; now: number; expiresAt: number },
): Promise<void> {
  await store.db
    .insertInto('web_sessions')
    .values({
      session_hash: session.sessionHash,
      token_id: session.tokenId,
      csrf_token: session.csrfToken,
      created_at: session.now,
      expires_at: session.expiresAt,
    })
    .execute();
}

/** The session with this hash if it has not expired and its token is not revoked. */
export async function findLiveSession(
  store: Store,
  sessionHash: string,
  now: number,
): Promise<LiveSession | undefined> {
  const row = await store.db
    .selectFrom('web_sessions')
    .innerJoin('api_tokens', 'api_tokens.token_id', 'web_sessions.token_id')
    .select([
      'web_sessions.id as id',
      'web_sessions.token_id as token_id',
      'web_sessions.csrf_token as csrf_token',
      'web_sessions.expires_at as expires_at',
      'api_tokens.name as name',
      'api_tokens.role as role',
    ])
    .where('web_sessions.session_hash', '=', sessionHash)
    .where('web_sessions.expires_at', '>', now)
    .where('api_tokens.revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    sessionId: Number(row.id),
    tokenId: row.token_id,
    name: row.name,
    role: row.role,
    csrfToken: row.csrf_token,
    expiresAt: Number(row.expires_at),
  };
}

export async function deleteSession(store: Store, sessionHash: string): Promise<void> {
  await store.db.deleteFrom('web_sessions').where('session_hash', '=', sessionHash).execute();
}

export async function deleteExpiredSessions(store: Store, now: number): Promise<void> {
  await store.db.deleteFrom('web_sessions').where('expires_at', '<=', now).execute();
}

export async function insertSignInCode(
  store: Store,
  code: { codeHash: string; tokenId: string; now: number; expiresAt: number },
): Promise<void> {
  await store.db
    .insertInto('web_sign_in_codes')
    .values({ code_hash: code.codeHash, token_id: code.tokenId, created_at: code.now, expires_at: code.expiresAt })
    .execute();
}

/**
 * Deletes the code with this hash and returns its token id, if it had not expired: one statement, so
 * two sign-ins racing with one code cannot both get it. Expired codes are deleted on the way.
 */
export async function takeSignInCode(store: Store, codeHash: string, now: number): Promise<string | undefined> {
  await store.db.deleteFrom('web_sign_in_codes').where('expires_at', '<=', now).execute();
  const row = await store.db
    .deleteFrom('web_sign_in_codes')
    .where('code_hash', '=', codeHash)
    .returning('token_id')
    .executeTakeFirst();
  return row?.token_id;
}
