import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/database.ts';
import { deleteExpiredSessions, deleteSession, findLiveSession, insertSession, type LiveSession } from './web-store.ts';

// Dashboard sessions: a random 256-bit id in the cookie, only its SHA-256 in the database (a
// high-entropy secret needs no slow hash), a CSRF token per session, an absolute expiry.

export type { LiveSession };

function hashSessionId(sessionId: string): string {
  return createHash('sha256').update(sessionId, 'utf8').digest('hex');
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
    sessionHash: hashSessionId(sessionId),
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
  return findLiveSession(store, hashSessionId(sessionId), now);
}

export async function closeSession(store: Store, sessionId: string): Promise<void> {
  if (sessionIdPattern.test(sessionId)) await deleteSession(store, hashSessionId(sessionId));
}
