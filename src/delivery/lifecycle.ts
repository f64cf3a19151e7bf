import { AppError } from '../common/errors.ts';
import type { Store } from '../store/database.ts';
import type { DeliveryRow, DeliveryState, DeliveryUpdate } from '../store/tables.ts';
import { cancelPendingLogs, deliveryValiditySeconds, getDelivery, updateDeliveryState } from './delivery-store.ts';
import { assertTransition, statesLeadingTo } from './state-machine.ts';

// Operator actions on a prepared or running delivery. Each is one conditional state change, so two
// operators (or an operator and the delivery-manager workflow) cannot both apply one.

/**
 * Moves a delivery to `to` only if it is still in a state that allows it (by default every state the
 * state machine lets reach `to`); the update itself checks the state, so two processes cannot both
 * start or prepare one delivery. Returns the updated row; INVALID_STATE says why it could not move.
 */
export async function transitionDelivery(
  store: Store,
  id: number,
  to: DeliveryState,
  now: number,
  changes: DeliveryUpdate = {},
  from: readonly DeliveryState[] = statesLeadingTo(to),
): Promise<DeliveryRow> {
  const updated = await updateDeliveryState(store, id, { to, from, now, changes });
  if (updated) return updated;
  const current = await getDelivery(store, id);
  assertTransition(id, current.state, to);
  if (!from.includes(current.state)) {
    throw new AppError(
      'INVALID_STATE',
      `delivery ${id} is ${current.state}; this action needs it to be ${from.join(' or ')}`,
    );
  }
  throw new AppError('INVALID_STATE', `delivery ${id} changed state concurrently (now ${current.state})`);
}

/**
 * Starts now, or at `at` (then the delivery-manager workflow starts it when due). Without `at`, a
 * prepared delivery whose definition has a future `scheduledAt` waits for it; starting a delivery
 * that already waits (start_pending) without `at` starts it at once.
 */
export async function startDelivery(store: Store, id: number, now: number, at?: number): Promise<DeliveryRow> {
  const current = at === undefined ? await getDelivery(store, id) : undefined;
  const when = current?.state === 'prepared' && current.scheduled_at !== null ? Number(current.scheduled_at) : at;
  if (when !== undefined && when > now)
    return transitionDelivery(store, id, 'start_pending', now, { scheduled_at: when });
  const validity = ((await deliveryValiditySeconds(store, id)) ?? 0) * 1000;
  return transitionDelivery(store, id, 'in_progress', now, { started_at: now, valid_until: now + validity }, [
    'prepared',
    'start_pending',
  ]);
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
  await cancelPendingLogs(store, id, now);
  return row;
}

export async function deleteDelivery(store: Store, id: number, now: number): Promise<DeliveryRow> {
  return transitionDelivery(store, id, 'deleted', now);
}
