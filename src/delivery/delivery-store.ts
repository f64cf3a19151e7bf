import { sql } from 'kysely';
import { AppError } from '../common/errors.ts';
import { defaultPriority, defaultWeight, shareLimits, type DeliveryDefinition } from './definition.ts';
import type { Store } from '../store/database.ts';
import type { DeliveryLogStatus, DeliveryRow, DeliveryState, DeliveryUpdate } from '../store/tables.ts';

export async function createDelivery(
  store: Store,
  definition: DeliveryDefinition,
  defaults: { validityHours: number },
  now: number,
): Promise<DeliveryRow> {
  let listId: number | null = null;
  if (definition.listName !== null) {
    const list = await store.db
      .selectFrom('lists')
      .select('id')
      .where('name', '=', definition.listName)
      .executeTakeFirst();
    if (!list)
      throw new AppError(
        'DELIVERY_NO_TARGET',
        `list "${definition.listName}" does not exist (import recipients into it first)`,
      );
    listId = list.id;
  }
  return store.db
    .insertInto('deliveries')
    .values({
      name: definition.name,
      state: 'edited',
      from_address: definition.fromAddress,
      from_name: definition.fromName,
      reply_to: definition.replyTo,
      subject_template: definition.subject,
      html_template: definition.html,
      text_template: definition.text,
      list_id: listId,
      affinity: definition.affinity,
      priority: definition.priority ?? defaultPriority,
      weight: definition.weight ?? defaultWeight,
      validity_seconds: Math.round((definition.validityHours ?? defaults.validityHours) * 3600),
      scheduled_at: definition.scheduledAt,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * A delivery's share of the MX paths it shares with others (src/mta/fair-share.ts), changeable
 * while it runs: the MTA's claims read it at once, its path queues within the content refresh (10 s).
 */
export async function setDeliveryShare(
  store: Store,
  id: number,
  change: { priority?: number | undefined; weight?: number | undefined },
  now: number,
): Promise<DeliveryRow> {
  if (change.priority === undefined && change.weight === undefined)
    throw new AppError('INPUT_INVALID', 'give a priority (0–9), a weight (1–100) or both');
  for (const field of ['priority', 'weight'] as const) {
    const value = change[field];
    const { min, max } = shareLimits[field];
    if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max))
      throw new AppError('INPUT_INVALID', `${field}: expected an integer from ${min} to ${max}, got ${value}`);
  }
  const current = await getDelivery(store, id);
  if (current.state === 'deleted') throw new AppError('INVALID_STATE', `delivery ${id} is deleted`);
  if (current.execution_peer !== null)
    throw new AppError(
      'INVALID_STATE',
      `delivery ${id} is sent by the execution instance ${current.execution_peer}: change its priority there`,
    );
  return store.db
    .updateTable('deliveries')
    .set({
      ...(change.priority !== undefined && { priority: change.priority }),
      ...(change.weight !== undefined && { weight: change.weight }),
      updated_at: now,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getDelivery(store: Store, id: number): Promise<DeliveryRow> {
  const row = await store.db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `delivery ${id} does not exist`);
  return row;
}

/** The newest deliveries first; `beforeId` pages backwards (the API's `before`). */
export async function listDeliveries(store: Store, limit = 100, beforeId?: number): Promise<DeliveryRow[]> {
  let query = store.db.selectFrom('deliveries').selectAll().where('state', '!=', 'deleted');
  if (beforeId !== undefined) query = query.where('id', '<', beforeId);
  return query.orderBy('id', 'desc').limit(limit).execute();
}

/**
 * Moves a delivery to `to` (with `changes`) only if it is still in one of the `from` states: one
 * conditional update, so two processes cannot both start or prepare one delivery. The allowed states
 * are the caller's decision (delivery/state-machine.ts). Undefined when the delivery was in none of them.
 */
export async function updateDeliveryState(
  store: Store,
  id: number,
  change: { to: DeliveryState; from: readonly DeliveryState[]; now: number; changes?: DeliveryUpdate },
): Promise<DeliveryRow | undefined> {
  return store.db
    .updateTable('deliveries')
    .set({ ...change.changes, state: change.to, updated_at: change.now })
    .where('id', '=', id)
    .where('state', 'in', change.from)
    .returningAll()
    .executeTakeFirst();
}

/** The validity period (seconds) of a delivery; undefined when it does not exist. */
export async function deliveryValiditySeconds(store: Store, id: number): Promise<number | undefined> {
  const row = await store.db
    .selectFrom('deliveries')
    .select('validity_seconds')
    .where('id', '=', id)
    .executeTakeFirst();
  return row?.validity_seconds;
}

export async function deliveryExists(store: Store, id: number): Promise<boolean> {
  const row = await store.db.selectFrom('deliveries').select('id').where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

/** The number of recipients in a delivery's target list; undefined when it has none. */
export async function deliveryTargetSize(store: Store, id: number): Promise<number | undefined> {
  const delivery = await store.db.selectFrom('deliveries').select('list_id').where('id', '=', id).executeTakeFirst();
  if (!delivery?.list_id) return undefined;
  const target = await store.db
    .selectFrom('recipients')
    .select(sql<number>`count(*)`.as('n'))
    .where('list_id', '=', delivery.list_id)
    .executeTakeFirstOrThrow();
  return Number(target.n);
}

const cancelBatchSize = 10_000;

/**
 * A stopped delivery's pending logs become cancelled (reason `cancelled`), in bounded batches (each a
 * short statement: a million logs never hold the SQLite write lock in one); returns how many.
 */
export async function cancelPendingLogs(
  store: Store,
  deliveryId: number,
  now: number,
  afterBatch?: () => Promise<void>,
): Promise<number> {
  let cancelled = 0;
  for (;;) {
    const rows = await cancelPendingLogsBatch(store, deliveryId, { limit: cancelBatchSize, now, reason: 'cancelled' });
    cancelled += rows;
    if (rows < cancelBatchSize) return cancelled;
    await afterBatch?.();
  }
}

/** Up to `limit` pending logs of a delivery become cancelled with `reason` (stopped, or past its validity); returns how many. */
export async function cancelPendingLogsBatch(
  store: Store,
  deliveryId: number,
  batch: { limit: number; now: number; reason: 'cancelled' | 'expired' },
): Promise<number> {
  const result = await store.db
    .updateTable('delivery_logs')
    .set({ status: 'cancelled', failure_reason: batch.reason, updated_at: batch.now })
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('delivery_logs')
        .select('id')
        .where('delivery_id', '=', deliveryId)
        .where('status', '=', 'pending')
        .limit(batch.limit),
    )
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Stopped deliveries that have pending logs again: the messages an MTA held when the delivery was
 * stopped come back to pending (handed back untried, or deferred) after the stop cancelled the others.
 */
export function stoppedDeliveriesWithPendingLogs(store: Store): Promise<number[]> {
  return deliveriesWithLogs(store, 'stopped', 'pending');
}

/** Ids of the deliveries in `state` that have logs (of `status`, when given). */
export async function deliveriesWithLogs(
  store: Store,
  state: DeliveryState,
  status?: DeliveryLogStatus,
): Promise<number[]> {
  const rows = await store.db
    .selectFrom('deliveries')
    .select('id')
    .where('state', '=', state)
    .where((eb) => {
      let logs = eb
        .selectFrom('delivery_logs')
        .select('delivery_logs.id')
        .whereRef('delivery_logs.delivery_id', '=', 'deliveries.id');
      if (status !== undefined) logs = logs.where('delivery_logs.status', '=', status);
      return eb.exists(logs);
    })
    .orderBy('id')
    .execute();
  return rows.map((row) => Number(row.id));
}

export interface LogCounts {
  byStatus: Record<DeliveryLogStatus, number>;
  /** Failed logs by failure reason (failed logs only). */
  byReason: Record<string, number>;
  /** Pending (or in-flight) logs by the reason of their last soft failure: retrying because of it. */
  retryingByReason: Record<string, number>;
  retried: number;
  total: number;
}

/**
 * Counts of a delivery's logs, read from delivery_log_counts (kept by triggers, migration 0028): a
 * few rows per key (PostgreSQL appends deltas until they are folded), never a scan of the logs.
 */
export async function countDeliveryLogs(store: Store, deliveryId: number): Promise<LogCounts> {
  const rows = await store.db
    .selectFrom('delivery_log_counts')
    .select(['status', 'failure_reason', 'retried', (eb) => eb.fn.sum<string | number>('n').as('n')])
    .where('delivery_id', '=', deliveryId)
    .groupBy(['status', 'failure_reason', 'retried'])
    .execute();
  const byStatus: Record<DeliveryLogStatus, number> = {
    pending: 0,
    sending: 0,
    sent: 0,
    failed: 0,
    ignored: 0,
    cancelled: 0,
  };
  const byReason: Record<string, number> = {};
  const retryingByReason: Record<string, number> = {};
  let retried = 0;
  let total = 0;
  for (const row of rows) {
    const n = Number(row.n);
    if (n === 0) continue;
    byStatus[row.status] += n;
    total += n;
    if (Number(row.retried) === 1) retried += n;
    if (row.failure_reason && row.status === 'failed')
      byReason[row.failure_reason] = (byReason[row.failure_reason] ?? 0) + n;
    if (row.failure_reason && (row.status === 'pending' || row.status === 'sending'))
      retryingByReason[row.failure_reason] = (retryingByReason[row.failure_reason] ?? 0) + n;
  }
  return { byStatus, byReason, retryingByReason, retried, total };
}

/** When the n-th accepted message of a delivery (0-based, in time order) was accepted; null if fewer were. */
export async function nthSentAt(store: Store, deliveryId: number, n: number): Promise<number | null> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select('sent_at')
    .where('delivery_id', '=', deliveryId)
    .where('status', '=', 'sent')
    .orderBy('sent_at')
    .limit(1)
    .offset(Math.max(0, Math.floor(n)))
    .executeTakeFirst();
  return row?.sent_at === null || row?.sent_at === undefined ? null : Number(row.sent_at);
}
