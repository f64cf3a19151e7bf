import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/database.ts';
import {
  deleteExpiredSessions,
  deleteSession,
  findLiveSession,
  insertSession,
  insertSignInCode,
  takeSignInCode,
  type LiveSession,
} from './web-store.ts';

// Dashboard sessions: a random 256-bit id in the cookie, only its SHA-256 in the database (a
// high-entropy secret needs no slow hash), a CSRF token per session, an absolute expiry. One-time
// sign-in codes the same way: random, hashed, short-lived, deleted by the sign-in that uses them.

export type { LiveSession };

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

const sessionIdPattern = /^[A-Za-z0-9_-]{43}$/;

export async function openSession(
  store: Store,
  tokenId: string,
  options: { now: number; lifetimeMs: number },
): Promise<{ sessionId: string; csrfToken: string; expiresAt: number }> {
  await deleteExpiredSessions(store, options.now);
  const sessionId = randomSecret();
  const csrfToken = randomSecret();
  const expiresAt = options.now + options.lifetimeMs;
  await insertSession(store, {
    sessionHash: hashSecret(sessionId),
    tokenId,
    csrfToken,
    now: options.now,
    expiresAt,
  });
  return { sessionId, csrfToken, expiresAt };
}

/** The live session a cookie value belongs to; undefined when malformed, unknown, expired or its token revoked. */
export async function readSession(store: Store, sessionId: string, now: number): Promise<LiveSession | undefined> {
  if (!sessionIdPattern.test(sessionId)) return undefined;
  return findLiveSession(store, hashSecret(sessionId), now);
}

export async function closeSession(store: Store, sessionId: string): Promise<void> {
  if (sessionIdPattern.test(sessionId)) await deleteSession(store, hashSecret(sessionId));
}

export const signInCodePrefix = 'herald_once_';
const signInCodePattern = /^herald_once_[A-Za-z0-9_-]{43}$/;

/** A code that signs in once, before `lifetimeMs` ends, as the token `tokenId` (the token stays unseen). */
export async function createSignInCode(
  store: Store,
  tokenId: string,
  options: { now: number; lifetimeMs: number },
): Promise<{ code: string; expiresAt: number }> {
  const code = `${signInCodePrefix}${randomSecret()}`;
  const expiresAt = options.now + options.lifetimeMs;
  await insertSignInCode(store, { codeHash: hashSecret(code), tokenId, now: options.now, expiresAt });
  return { code, expiresAt };
}

/** The token id a presented code was made for, once: the code is gone afterwards. */
export async function redeemSignInCode(store: Store, code: string, now: number): Promise<string | undefined> {
  if (!signInCodePattern.test(code)) return undefined;
  return takeSignInCode(store, hashSecret(code), now);
}
