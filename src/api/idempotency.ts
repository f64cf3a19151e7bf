import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { AppError } from '../common/errors.ts';
import { inTransaction, isUniqueViolation, type Store } from '../store/database.ts';
import { deleteIdempotencyKeysBefore, findIdempotencyKey, insertIdempotencyKey } from './api-store.ts';

// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) on a create: a client that timed out
// and retried created the thing twice. The key, per token, is recorded with the hash of the body and
// the id of what was created, in the transaction that creates it: a retry, even one running at the
// same time (its key insert waits on the unique index, then fails and rolls its own creation back),
// answers with what the first created. A refused request records nothing. Keys last a day.

export const idempotencyKeyHeader = 'idempotency-key';
export const idempotencyKeyTtlMs = 24 * 3_600_000;

/** The request headers of a route that honours the header (validated, named in the OpenAPI document). */
export const idempotencyHeaders = Type.Object({
  [idempotencyKeyHeader]: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7E]+$',
      description: 'a retry with the same key (and body) answers with what the first request created, for 24 h',
    }),
  ),
});

export interface IdempotentRequest {
  store: Store;
  tokenId: string;
  key: string;
  route: string;
  body: unknown;
  now: number;
}

/**
 * Runs `create` (which returns the new id) once per token and key; a repeat gets the id the first
 * created and `replayed: true`. The same key with another route or body is an INPUT_INVALID.
 */
export async function createOnce(
  request: IdempotentRequest,
  create: (store: Store) => Promise<number>,
): Promise<{ id: number; replayed: boolean }> {
  const hash = createHash('sha256')
    .update(JSON.stringify(request.body ?? null))
    .digest('hex');
  const replay = async () => {
    const row = await findIdempotencyKey(request.store, request.tokenId, request.key);
    if (!row || row.created_at < request.now - idempotencyKeyTtlMs) return undefined;
    if (row.route !== request.route || row.request_hash !== hash)
      throw new AppError('INPUT_INVALID', 'this Idempotency-Key was sent before with another request', {
        details: {
          errors: [{ path: `/headers/${idempotencyKeyHeader}`, message: 'already used with another body or route' }],
        },
      });
    return { id: row.resource_id, replayed: true };
  };
  const earlier = await replay();
  if (earlier) return earlier;
  try {
    return await inTransaction(request.store, async (store) => {
      await deleteIdempotencyKeysBefore(store, request.now - idempotencyKeyTtlMs);
      const id = await create(store);
      await insertIdempotencyKey(store, {
        token_id: request.tokenId,
        idempotency_key: request.key,
        route: request.route,
        request_hash: hash,
        resource_id: id,
        created_at: request.now,
      });
      return { id, replayed: false };
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const concurrent = await replay();
    if (!concurrent) throw error;
    return concurrent;
  }
}
