import { sql } from 'kysely';
import { AppError } from '../common/errors.ts';
import type { DeliveryDefinition } from '../delivery/definition.ts';
import { assertTransition, statesLeadingTo } from '../delivery/state-machine.ts';
import type { Store } from './database.ts';
import type { DeliveryLogStatus, DeliveryRow, DeliveryState, DeliveryUpdate } from './tables.ts';

export async function createDelivery(store: Store, definition: DeliveryDefinition, defaults: { validityHours: number }, now: number): Promise<DeliveryRow> {
  let listId: number | null = null;
  if (definition.listName !== null) {
    const list = await store.db.selectFrom('lists').select('id').where('name', '=', definition.listName).executeTakeFirst();
    if (!list) throw new AppError('DELIVERY_NO_TARGET', `list "${definition.listName}" does not exist (import recipients into it first)`);
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
      validity_seconds: Math.round((definition.validityHours ?? defaults.validityHours) * 3600),
      scheduled_at: definition.scheduledAt,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getDelivery(store: Store, id: number): Promise<DeliveryRow> {
  const row = await store.db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `delivery ${id} does not exist`);
  return row;
}

export async function listDeliveries(store: Store, limit = 100): Promise<DeliveryRow[]> {
  return store.db.selectFrom('deliveries').selectAll().where('state', '!=', 'deleted').orderBy('id', 'desc').limit(limit).execute();
}

/**
 * Moves a delivery to `to` only if it is still in a state that allows it (a conditional update, so two
 * processes cannot both start or prepare one delivery). Returns the updated row.
 */
export async function transitionDelivery(
  store: Store,
  id: number,
  to: DeliveryState,
  now: number,
  changes: DeliveryUpdate = {},
  from: readonly DeliveryState[] = statesLeadingTo(to),
): Promise<DeliveryRow> {
  const updated = await store.db
    .updateTable('deliveries')
    .set({ ...changes, state: to, updated_at: now })
    .where('id', '=', id)
    .where('state', 'in', from)
    .returningAll()
    .executeTakeFirst();
  if (updated) return updated;
  const current = await getDelivery(store, id);
  assertTransition(id, current.state, to);
  if (!from.includes(current.state)) {
    throw new AppError('INVALID_STATE', `delivery ${id} is ${current.state}; this action needs it to be ${from.join(' or ')}`);
  }
  throw new AppError('INVALID_STATE', `delivery ${id} changed state concurrently (now ${current.state})`);
}

export interface LogCounts {
  byStatus: Record<DeliveryLogStatus, number>;
  byReason: Record<string, number>;
  retried: number;
  total: number;
}

export async function countDeliveryLogs(store: Store, deliveryId: number): Promise<LogCounts> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['status', 'failure_reason', sql<number>`count(*)`.as('n'), sql<number>`sum(case when attempts > 1 then 1 else 0 end)`.as('retried')])
    .where('delivery_id', '=', deliveryId)
    .groupBy(['status', 'failure_reason'])
    .execute();
  const byStatus: Record<DeliveryLogStatus, number> = { pending: 0, sending: 0, sent: 0, failed: 0, ignored: 0, cancelled: 0 };
  const byReason: Record<string, number> = {};
  let retried = 0;
  let total = 0;
  for (const row of rows) {
    const n = Number(row.n);
    byStatus[row.status] += n;
    total += n;
    retried += Number(row.retried ?? 0);
    if (row.failure_reason && row.status !== 'sent') byReason[row.failure_reason] = (byReason[row.failure_reason] ?? 0) + n;
  }
  return { byStatus, byReason, retried, total };
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
