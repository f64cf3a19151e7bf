import { sql } from 'kysely';
import type { Store } from '../store/database.ts';

// Execution side of mid-sourcing (migration 0014): the (peer, nonce) of every signed request accepted
// within the replay window, shared by every execution process on the database.

/** Records the request's nonce; false if this peer already used it (a replay). One atomic statement. */
export async function recordSeenRequest(store: Store, peer: string, nonce: string, now: number): Promise<boolean> {
  const result = await store.db
    .insertInto('mid_seen_requests')
    .values({ peer, nonce, seen_at: now })
    .onConflict((oc) => oc.columns(['peer', 'nonce']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

/** Deletes at most `limit` entries seen before `before`, oldest first, by the seen_at index. */
export async function purgeSeenRequestsBatch(store: Store, before: number, limit: number): Promise<number> {
  const result = await sql`
    delete from mid_seen_requests where seen_at < ${before} and (peer, nonce) in (
      select peer, nonce from mid_seen_requests where seen_at < ${before} order by seen_at limit ${limit})`.execute(
    store.db,
  );
  return Number(result.numAffectedRows ?? 0);
}
