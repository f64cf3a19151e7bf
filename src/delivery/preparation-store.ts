import { sql } from 'kysely';
import type { TargetRange, TargetRecipient } from './preparation.ts';
import { type Store, unlessUniqueViolation } from '../store/database.ts';
import { deliveriesWithLogs } from './delivery-store.ts';
import type { SqliteStatementRunner } from '../store/sqlite-statement-runner.ts';
import type { DeliveryState, DeliveryUpdate } from '../store/tables.ts';

// Preparation's storage: the target read in batches, the exclusions looked up, the logs written, and
// what the delivery-manager workflow needs to fail preparations that stopped making progress.

const deleteBatchSize = 10_000;
// SQLite binds at most 32766 variables per statement.
const lookupChunkSize = 2_000;

/**
 * A list freshly imported has no planner statistics yet; without them PostgreSQL reads the whole rest
 * of the list for every batch instead of walking the index (quadratic on a 1M list). No-op on SQLite.
 */
export async function analyzeRecipients(store: Store): Promise<void> {
  if (store.dialect === 'postgres') await sql`analyze recipients`.execute(store.db);
}

/**
 * Takes over a preparation whose process stopped renewing it (its liveness lease ran out): renews it
 * for the caller, now its `owner`, only if it is still `preparing` and was last renewed before `staleBefore`.
 */
export async function takeOverPreparation(
  store: Store,
  deliveryId: number,
  staleBefore: number,
  now: number,
  owner: string,
): Promise<boolean> {
  const result = await store.db
    .updateTable('deliveries')
    .set({ updated_at: now, last_error: null, preparation_owner: owner })
    .where('id', '=', deliveryId)
    .where('state', '=', 'preparing')
    .where('updated_at', '<', staleBefore)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Renews updated_at while the delivery is still `preparing` under `owner`; false when it no longer is. */
export async function renewPreparation(store: Store, deliveryId: number, now: number, owner: string): Promise<boolean> {
  return updateOwnedPreparation(store, deliveryId, owner, { updated_at: now });
}

/**
 * Ends a preparation (prepared, preparation_failed, or back to edited) only while `owner` still holds
 * it; false when it does not (taken over, or failed as interrupted by delivery-manager).
 */
export async function settlePreparation(
  store: Store,
  deliveryId: number,
  owner: string,
  change: { to: DeliveryState; now: number; changes?: DeliveryUpdate },
): Promise<boolean> {
  return updateOwnedPreparation(store, deliveryId, owner, {
    ...change.changes,
    state: change.to,
    updated_at: change.now,
    preparation_owner: null,
  });
}

async function updateOwnedPreparation(
  store: Store,
  deliveryId: number,
  owner: string,
  set: DeliveryUpdate,
): Promise<boolean> {
  const result = await store.db
    .updateTable('deliveries')
    .set(set)
    .where('id', '=', deliveryId)
    .where('state', '=', 'preparing')
    .where('preparation_owner', '=', owner)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Recipients of the list with id > afterId, in id order. */
export async function targetBatch(
  store: Store,
  listId: number,
  afterId: number,
  limit: number,
): Promise<TargetRecipient[]> {
  return store.db
    .selectFrom('recipients')
    .select(['id', 'email', 'data'])
    .where('list_id', '=', listId)
    .where('id', '>', afterId)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** Those of `emails` that are quarantined or denylisted, with their state. */
export async function blockedAddresses(
  store: Store,
  emails: string[],
): Promise<Map<string, 'quarantined' | 'denylisted'>> {
  const blocked = new Map<string, 'quarantined' | 'denylisted'>();
  for (let i = 0; i < emails.length; i += lookupChunkSize) {
    const rows = await store.db
      .selectFrom('addresses')
      .select(['email', 'state'])
      .where('email', 'in', emails.slice(i, i + lookupChunkSize))
      .where('state', 'in', ['quarantined', 'denylisted'])
      .execute();
    for (const row of rows) blocked.set(row.email, row.state as 'quarantined' | 'denylisted');
  }
  return blocked;
}

/**
 * Creates the logs of a range's recipients, skipping addresses that already have one in this
 * delivery (case variants included); returns how many were inserted. INSERT ... SELECT: the rows are
 * copied inside the database, one short statement per batch, in id order (of two spellings of one
 * address, the first of the list is kept). Ids and times are integers this code produced, so they are
 * inlined as literals: PostgreSQL cannot type bare parameters in a select list. Runs outside a
 * transaction: a batch that meets an address already there is written again (below). With `runner`
 * (SQLite), the statement runs on the runner's own connection, in a worker thread.
 * One statement at a time: two side by side (split by address hash) cost PostgreSQL 10 s more CPU
 * for 1M logs and saved no time, both waiting on the same last pages of the indexes that grow at the end.
 */
export async function insertDeliveryLogs(
  store: Store,
  deliveryId: number,
  range: TargetRange,
  now: number,
  options: { foldLocalPartCase?: boolean; runner?: SqliteStatementRunner; owner?: string } = {},
): Promise<number> {
  const { db } = store;
  const foldLocalPartCase = options.foldLocalPartCase !== false;
  // The address as preparation compares addresses (delivery_logs.address_key, unique per delivery):
  // the domain's case never matters (RFC 5321 §2.4); the local part's by delivery.foldLocalPartCase.
  // lower() folds ASCII letters on SQLite, every letter on PostgreSQL.
  const addressKey = foldLocalPartCase
    ? sql<string>`lower(email)`
    : sql<string>`substr(email, 1, length(email) - length(domain)) || lower(domain)`;
  let source = db
    .selectFrom('recipients')
    .select([
      sql<number>`${sql.lit(deliveryId)}`.as('delivery_id'),
      'id',
      'email',
      'domain',
      'data',
      sql<string>`${sql.lit('pending')}`.as('status'),
      sql<number>`${sql.lit(0)}`.as('attempts'),
      sql<number>`${sql.lit(0)}`.as('next_attempt_at'),
      sql<number>`${sql.lit(now)}`.as('updated_at'),
      addressKey.as('address_key'),
    ])
    .where('list_id', '=', range.listId)
    .where('id', '>', range.afterId)
    .where('id', '<=', range.lastId);
  if (range.excludedIds.length > 0) source = source.where('id', 'not in', range.excludedIds);
  // Written only while this preparation holds the delivery: one taken over from it writes nothing more.
  const owner = options.owner;
  if (owner !== undefined) source = source.where((eb) => eb.exists(preparedBy(store, deliveryId, owner)));
  source = source.orderBy('id');
  const insert = db
    .insertInto('delivery_logs')
    .columns([
      'delivery_id',
      'recipient_id',
      'email',
      'domain',
      'data',
      'status',
      'attempts',
      'next_attempt_at',
      'updated_at',
      'address_key',
    ])
    .expression(source);
  // Optimistic: almost every batch has no address already in the delivery, and a plain insert costs
  // PostgreSQL a third less than one with ON CONFLICT (no speculative pre-check of the unique index per
  // row). A batch that does have one (a case variant, a batch written again after a crash) fails as a
  // whole, and is written again skipping the addresses the unique (delivery_id, address_key) index
  // (migration 0032) already holds.
  const run = async (query: typeof insert) =>
    options.runner
      ? options.runner.run(query.compile())
      : Number((await query.executeTakeFirst()).numInsertedOrUpdatedRows ?? 0);
  return unlessUniqueViolation(
    null,
    () => run(insert),
    () => run(insert.onConflict((oc) => oc.doNothing())),
  );
}

/**
 * Deletes every log of a delivery, in bounded batches (each a short statement). With `whileState`, each
 * batch deletes only while the delivery is still in that state (a delivery prepared again meanwhile keeps its new logs).
 */
export async function deleteDeliveryLogs(
  store: Store,
  deliveryId: number,
  options: { whileState?: DeliveryState; whileOwner?: string; afterBatch?: () => Promise<void> } = {},
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const ids = store.db
      .selectFrom('delivery_logs')
      .select('id')
      .where('delivery_id', '=', deliveryId)
      .limit(deleteBatchSize);
    let statement = store.db.deleteFrom('delivery_logs').where('id', 'in', ids);
    const state = options.whileState;
    if (state !== undefined) {
      statement = statement.where((eb) =>
        eb.exists(
          eb
            .selectFrom('deliveries')
            .select('deliveries.id')
            .where('deliveries.id', '=', deliveryId)
            .where('deliveries.state', '=', state),
        ),
      );
    }
    const owner = options.whileOwner;
    if (owner !== undefined) statement = statement.where((eb) => eb.exists(preparedBy(store, deliveryId, owner)));
    const result = await statement.executeTakeFirst();
    const rows = Number(result.numDeletedRows);
    deleted += rows;
    if (rows < deleteBatchSize) return deleted;
    await options.afterBatch?.();
  }
}

/**
 * The marketing peer a delivery was received from (mid-sourcing execution side), or undefined: its
 * recipients arrive with the parts that peer pushes, not from a list of this instance.
 */
export async function receivedFromPeer(
  store: Store,
  deliveryId: number,
): Promise<{ peer: string; sourceDeliveryId: number } | undefined> {
  const row = await store.db
    .selectFrom('mid_inbound_deliveries')
    .select(['peer', 'source_delivery_id'])
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirst();
  return row && { peer: row.peer, sourceDeliveryId: Number(row.source_delivery_id) };
}

/** A delivery received from a mid-sourcing peer may wait this long for its next part (see stalePreparations). */
export const receivedPartsIdleMs = 7 * 86_400_000;

/**
 * Deliveries `preparing` whose row has not changed since `before` (a live preparation renews updated_at
 * with every batch). A delivery received from a mid-sourcing marketing peer is `preparing` while its
 * parts arrive (each renews updated_at), for as long as the push takes (a slow link, the peer down for
 * a while): no process here prepares it and the peer resumes its push, so it is one of these only
 * after a week without a part (a push abandoned over there), or once the peer stopped it before
 * finalize (a stopped push is never resumed).
 */
export async function stalePreparations(
  store: Store,
  before: number,
): Promise<Array<{ id: number; lastProgressAt: number }>> {
  const rows = await store.db
    .selectFrom('deliveries')
    .select(['id', 'updated_at'])
    .where('state', '=', 'preparing')
    .where('updated_at', '<', before)
    .where((eb) =>
      eb.or([
        eb('updated_at', '<', before - receivedPartsIdleMs),
        eb.not(
          eb.exists(
            eb
              .selectFrom('mid_inbound_deliveries as m')
              .select('m.delivery_id')
              .whereRef('m.delivery_id', '=', 'deliveries.id')
              .where((inner) =>
                inner.or([inner('m.state_target', 'is', null), inner('m.state_target', '<>', 'stopped')]),
              ),
          ),
        ),
      ]),
    )
    .orderBy('id')
    .execute();
  return rows.map((row) => ({ id: Number(row.id), lastProgressAt: Number(row.updated_at) }));
}

/** Fails a stale preparation; the condition is checked again inside the update, so a preparation that moved meanwhile is left alone. */
export async function failStalePreparation(
  store: Store,
  deliveryId: number,
  options: { before: number; error: string; now: number },
): Promise<boolean> {
  const result = await store.db
    .updateTable('deliveries')
    .set({ state: 'preparation_failed', last_error: options.error, updated_at: options.now })
    .where('id', '=', deliveryId)
    .where('state', '=', 'preparing')
    .where('updated_at', '<', options.before)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Deliveries in preparation_failed that still have logs (a run stopped between failing one and deleting its logs). */
export function failedPreparationsWithLogs(store: Store): Promise<number[]> {
  return deliveriesWithLogs(store, 'preparation_failed');
}

/** Number of logs of a delivery (used by tests and the CLI). */
export async function countLogs(store: Store, deliveryId: number): Promise<number> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select(sql<number>`count(*)`.as('n'))
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The delivery, while it is `preparing` under `owner` (a subquery for EXISTS). */
function preparedBy(store: Store, deliveryId: number, owner: string) {
  return store.db
    .selectFrom('deliveries')
    .select('deliveries.id')
    .where('deliveries.id', '=', deliveryId)
    .where('deliveries.state', '=', 'preparing')
    .where('deliveries.preparation_owner', '=', owner);
}
