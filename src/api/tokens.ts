import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../common/errors.ts';
import type { Store } from '../store/database.ts';
import type { ApiRole, ApiTokenRow } from '../store/tables.ts';
import { findToken, insertToken, listTokenRows, revokeTokenRow } from './api-store.ts';

// API tokens: `herald_<token id>_<secret>`, 256 random bits of secret, shown once. Only the SHA-256
// of the whole token is stored: a high-entropy secret needs no slow hash (nothing to brute-force
// offline), and the comparison of hashes is constant-time. Used by `herald tokens` and the API.

export const apiRoles: readonly ApiRole[] = ['viewer', 'operator', 'admin'];

/** viewer < operator < admin: a role may do what any lower role may. */
export function roleAllows(role: ApiRole, needed: ApiRole): boolean {
  return apiRoles.indexOf(role) >= apiRoles.indexOf(needed);
}

export function parseRole(value: string): ApiRole {
  if ((apiRoles as readonly string[]).includes(value)) return value as ApiRole;
  throw new AppError('INPUT_INVALID', `role must be one of ${apiRoles.join(', ')} (got "${value}")`);
}

export interface TokenView {
  tokenId: string;
  name: string;
  role: ApiRole;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export function tokenView(row: ApiTokenRow): TokenView {
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  return {
    tokenId: row.token_id,
    name: row.name,
    role: row.role,
    createdAt: new Date(row.created_at).toISOString(),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
  };
}

const tokenPattern = /^herald_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export async function createToken(
  store: Store,
  request: { role: ApiRole; name?: string | undefined },
  now: number,
): Promise<{ token: string; view: TokenView }> {
  const name = (request.name ?? '').trim() || `${request.role} token`;
  if (name.length > 200) throw new AppError('INPUT_INVALID', 'token name: at most 200 characters');
  const tokenId = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');
  const token = `herald_${tokenId}_${randomBytes(32).toString('base64url')}`;
  const row = await insertToken(store, { tokenId, name, role: request.role, secretHash: hashToken(token), now });
  return { token, view: tokenView(row) };
}

export async function listTokens(store: Store): Promise<TokenView[]> {
  return (await listTokenRows(store)).map(tokenView);
}

export async function revokeToken(store: Store, tokenId: string, now: number): Promise<TokenView> {
  const row = await findToken(store, tokenId);
  if (!row) throw new AppError('NOT_FOUND', `no API token ${tokenId}`);
  await revokeTokenRow(store, tokenId, now);
  return tokenView((await findToken(store, tokenId))!);
}

/** The token with this id unless revoked (a one-time sign-in code names its token by id). */
export async function findLiveToken(store: Store, tokenId: string): Promise<ApiTokenRow | undefined> {
  const row = await findToken(store, tokenId);
  return row && row.revoked_at === null ? row : undefined;
}

/** The live token a presented bearer value belongs to, or undefined (malformed, unknown, revoked or wrong secret). */
export async function authenticateToken(store: Store, presented: string): Promise<ApiTokenRow | undefined> {
  const match = tokenPattern.exec(presented);
  if (!match) return undefined;
  const row = await findToken(store, match[1]!);
  if (!row || row.revoked_at !== null) return undefined;
  const expected = Buffer.from(row.secret_hash, 'hex');
  const actual = Buffer.from(hashToken(presented), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? row : undefined;
}
