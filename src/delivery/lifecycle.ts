import type { Store } from '../store/database.ts';
import { transitionDelivery } from '../store/delivery-queries.ts';
import type { DeliveryRow } from '../store/tables.ts';

// Operator actions on a prepared or running delivery. Each is one conditional state change, so two
// operators (or an operator and the delivery-manager workflow) cannot both apply one.

/** Starts now, or at `at` (then the delivery-manager workflow starts it when due). */
export async function startDelivery(store: Store, id: number, now: number, at?: number): Promise<DeliveryRow> {
  if (at !== undefined && at > now) return transitionDelivery(store, id, 'start_pending', now, { scheduled_at: at });
  const delivery = await store.db.selectFrom('deliveries').select('validity_seconds').where('id', '=', id).executeTakeFirst();
  const validity = (delivery?.validity_seconds ?? 0) * 1000;
  return transitionDelivery(store, id, 'in_progress', now, { started_at: now, valid_until: now + validity }, ['prepared', 'start_pending']);
}

export async function pauseDelivery(store: Store, id: number, now: number): Promise<DeliveryRow> {
  return transitionDelivery(store, id, 'paused', now);
}

export async function resumeDelivery(store: Store, id: number, now: number): Promise<DeliveryRow> {
  return transitionDelivery(store, id, 'in_progress', now, {}, ['paused']);
}

/** Stops for good: what has not been sent is cancelled (messages inside an open SMTP transaction still complete). */
export async function stopDelivery(store: Store, id: number, now: number): Promise<DeliveryRow> {
  const row = await transitionDelivery(store, id, 'stopped', now, { finished_at: now });
  await store.db
    .updateTable('delivery_logs')
    .set({ status: 'cancelled', failure_reason: 'cancelled', updated_at: now })
    .where('delivery_id', '=', id)
    .where('status', '=', 'pending')
    .execute();
  return row;
}

export async function deleteDelivery(store: Store, id: number, now: number): Promise<DeliveryRow> {
  return transitionDelivery(store, id, 'deleted', now);
}
