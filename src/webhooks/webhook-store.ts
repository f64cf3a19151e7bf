import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { WebhookOutboxRow, WebhookSubscriptionRow } from '../store/tables.ts';

// Subscriptions and the outbox of event webhooks (migration 0018; the outbox is filled by triggers).

export async function insertSubscription(
  store: Store,
  subscription: { url: string; events: string[]; secret: string; now: number },
): Promise<WebhookSubscriptionRow> {
  return store.db
    .insertInto('webhook_subscriptions')
    .values({
      url: subscription.url,
      events: JSON.stringify(subscription.events),
      secret: subscription.secret,
      state: 'active',
      previous_secret: null,
      previous_secret_until: null,
      last_error: null,
      last_success_at: null,
      paused_at: null,
      created_at: subscription.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listSubscriptions(store: Store): Promise<WebhookSubscriptionRow[]> {
  return store.db.selectFrom('webhook_subscriptions').selectAll().orderBy('id').execute();
}

export async function countSubscriptions(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('webhook_subscriptions')
    .select((eb) => eb.fn.countAll().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function getSubscription(store: Store, id: number): Promise<WebhookSubscriptionRow | undefined> {
  return store.db.selectFrom('webhook_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function deleteSubscription(store: Store, id: number): Promise<void> {
  await store.db.deleteFrom('webhook_outbox').where('subscription_id', '=', id).execute();
  await store.db.deleteFrom('webhook_subscriptions').where('id', '=', id).execute();
}

/**
 * The subscription signs with `secret` from now on; the secret it had keeps signing too until
 * `previousUntil` (null: not at all). One statement: two rotations at once each keep the secret the
 * other replaced.
 */
export async function rotateSecret(
  store: Store,
  id: number,
  rotation: { secret: string; previousUntil: number | null },
): Promise<WebhookSubscriptionRow | undefined> {
  return store.db
    .updateTable('webhook_subscriptions')
    .set((eb) => ({
      previous_secret: rotation.previousUntil === null ? null : eb.ref('secret'),
      previous_secret_until: rotation.previousUntil,
      secret: rotation.secret,
    }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function resumeSubscription(store: Store, id: number): Promise<void> {
  await store.db
    .updateTable('webhook_subscriptions')
    .set({ state: 'active', paused_at: null, consecutive_failures: 0 })
    .where('id', '=', id)
    .execute();
  // Its waiting events are due again at once, instead of at their retry time (up to an hour later).
  await store.db
    .updateTable('webhook_outbox')
    .set({ next_attempt_at: sql`created_at` })
    .where('subscription_id', '=', id)
    .where('delivered_at', 'is', null)
    .execute();
}

/**
 * Active subscriptions with at least one event due (up to id `throughId`: commit-watermark.ts), and none waiting for the retry of a failed
 * request: events written since are sent with them, after them, never before (a receiver keeping
 * the last event id it processed would take an older one sent later for a replay), and a receiver
 * that is down gets no request before its backoff, however many events keep coming.
 */
export async function subscriptionsWithDueEvents(
  store: Store,
  now: number,
  throughId: number,
): Promise<WebhookSubscriptionRow[]> {
  return store.db
    .selectFrom('webhook_subscriptions as s')
    .selectAll('s')
    .where('s.state', '=', 'active')
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('webhook_outbox as o')
          .select('o.id')
          .whereRef('o.subscription_id', '=', 's.id')
          .where('o.delivered_at', 'is', null)
          .where('o.next_attempt_at', '<=', now)
          .where('o.id', '<=', throughId),
      ),
    )
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('webhook_outbox as r')
            .select('r.id')
            .whereRef('r.subscription_id', '=', 's.id')
            .where('r.delivered_at', 'is', null)
            .where('r.next_attempt_at', '>', now)
            .where('r.attempts', '>', 0),
        ),
      ),
    )
    .orderBy('s.id')
    .execute();
}

/**
 * The subscription's lease for one request, if it is active and no other dispatcher holds it: two api
 * processes on one database sent the same batch at once. Returns the row as it is now (its secret,
 * its failures in a row). A crashed holder's lease ends at `until`.
 */
export async function claimSubscription(
  store: Store,
  id: number,
  lease: { holder: string; now: number; until: number },
): Promise<WebhookSubscriptionRow | undefined> {
  return store.db
    .updateTable('webhook_subscriptions')
    .set({ dispatch_holder: lease.holder, dispatch_until: lease.until })
    .where('id', '=', id)
    .where('state', '=', 'active')
    .where((eb) => eb.or([eb('dispatch_holder', 'is', null), eb('dispatch_until', '<=', lease.now)]))
    .returningAll()
    .executeTakeFirst();
}

export async function releaseSubscription(store: Store, id: number, holder: string): Promise<void> {
  await store.db
    .updateTable('webhook_subscriptions')
    .set({ dispatch_holder: null, dispatch_until: null })
    .where('id', '=', id)
    .where('dispatch_holder', '=', holder)
    .execute();
}

/** The oldest due events of one subscription up to id `throughId`, in the order they were written. */
export async function dueEvents(
  store: Store,
  subscriptionId: number,
  now: number,
  limit: number,
  throughId: number,
): Promise<WebhookOutboxRow[]> {
  return store.db
    .selectFrom('webhook_outbox')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .where('delivered_at', 'is', null)
    .where('next_attempt_at', '<=', now)
    .where('id', '<=', throughId)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** Delivered events leave the outbox; the subscription's failure streak ends. */
export async function recordDelivered(store: Store, subscriptionId: number, ids: number[], now: number): Promise<void> {
  await store.db.deleteFrom('webhook_outbox').where('id', 'in', ids).execute();
  await store.db
    .updateTable('webhook_subscriptions')
    .set({ consecutive_failures: 0, last_error: null, last_success_at: now })
    .where('id', '=', subscriptionId)
    .execute();
}

/** A failed batch: each event retried at `retryAt`; past `pauseAfter` failures in a row the subscription is paused. */
export async function recordFailed(
  store: Store,
  subscriptionId: number,
  failure: { ids: number[]; retryAt: number; error: string; pauseAfter: number; now: number },
): Promise<void> {
  await store.db
    .updateTable('webhook_outbox')
    .set({ attempts: sql`attempts + 1`, next_attempt_at: failure.retryAt })
    .where('id', 'in', failure.ids)
    .execute();
  await store.db
    .updateTable('webhook_subscriptions')
    .set({ consecutive_failures: sql`consecutive_failures + 1`, last_error: failure.error.slice(0, 500) })
    .where('id', '=', subscriptionId)
    .execute();
  await store.db
    .updateTable('webhook_subscriptions')
    .set({ state: 'paused', paused_at: failure.now })
    .where('id', '=', subscriptionId)
    .where('state', '=', 'active')
    .where('consecutive_failures', '>=', failure.pauseAfter)
    .execute();
}

export async function outboxBacklog(store: Store): Promise<Map<number, number>> {
  const rows = await store.db
    .selectFrom('webhook_outbox')
    .select(['subscription_id', sql<number>`count(*)`.as('count')])
    .where('delivered_at', 'is', null)
    .groupBy('subscription_id')
    .execute();
  return new Map(rows.map((row) => [Number(row.subscription_id), Number(row.count)]));
}

/**
 * PostgreSQL: the last outbox id handed out, then the transactions of this database still running
 * (commit-watermark.ts). Read in this order: a transaction that took an event id up to `lastId` had
 * its transaction id before (triggers write an event after the row it reports), so it is either
 * over or in `running`.
 */
export interface OutboxMark {
  lastId: number;
  running: RunningTransaction[];
}

/** A transaction with writes, by its id, and the server process running it (pg_stat_activity.pid). */
export interface RunningTransaction {
  xid: string;
  pid: number;
}

export async function readOutboxMark(store: Store): Promise<OutboxMark> {
  const sequence = await sql<{ last_id: string }>`
    select case when is_called then last_value else last_value - 1 end as last_id from webhook_outbox_id_seq`.execute(
    store.db,
  );
  return { lastId: Number(sequence.rows[0]!.last_id), running: await runningTransactions(store) };
}

/**
 * PostgreSQL: the transactions with writes still running in this database. Only this database's: a
 * long transaction of another application on the same server writes no event here.
 */
export async function runningTransactions(store: Store): Promise<RunningTransaction[]> {
  const result = await sql<{ xid: string; pid: number }>`
    select backend_xid::text as xid, pid from pg_stat_activity
    where datname = current_database() and backend_xid is not null`.execute(store.db);
  return result.rows.map((row) => ({ xid: row.xid, pid: Number(row.pid) }));
}
