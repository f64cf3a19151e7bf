import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** A random, URL-safe identifier (used for claim owners, idempotency keys, Message-ID local parts). */
export function randomId(bytes = 12): string {
  return randomBytes(bytes).toString('base64url');
}

/** The default node id: stable across restarts on one machine, so a restarted MTA can take back its own claims. */
export function defaultNodeId(): string {
  return `${hostname()}`;
}
