import { AppError } from '../common/errors.ts';
import type { DeliveryState } from '../store/tables.ts';

// The delivery lifecycle (DESIGN.md): edited → preparing → prepared → start_pending → in_progress → finished,
// with preparation_failed, paused, stopped, failed and deleted on the side.

const transitions: Record<DeliveryState, readonly DeliveryState[]> = {
  edited: ['preparing', 'deleted'],
  // Back to edited when the preparation is interrupted (Ctrl-C): its logs are removed.
  preparing: ['prepared', 'preparation_failed', 'edited'],
  // A prepared delivery can be prepared again (after an audience change) until it starts.
  prepared: ['preparing', 'start_pending', 'in_progress', 'deleted'],
  preparation_failed: ['preparing', 'deleted'],
  start_pending: ['in_progress', 'stopped', 'deleted'],
  in_progress: ['finished', 'paused', 'stopped', 'failed'],
  // Finished when its validity ends while paused (cleanup), or when its execution instance finished it.
  paused: ['in_progress', 'stopped', 'finished'],
  finished: ['deleted'],
  stopped: ['deleted'],
  failed: ['deleted'],
  deleted: [],
};

export const finalDeliveryStates: readonly DeliveryState[] = ['finished', 'stopped', 'failed', 'deleted'];

export function canTransition(from: DeliveryState, to: DeliveryState): boolean {
  return transitions[from].includes(to);
}

/** The states a delivery may be in for `to` to be reached; used as the WHERE of a conditional update. */
export function statesLeadingTo(to: DeliveryState): DeliveryState[] {
  return (Object.keys(transitions) as DeliveryState[]).filter((from) => transitions[from].includes(to));
}

export function assertTransition(deliveryId: number, from: DeliveryState, to: DeliveryState): void {
  if (!canTransition(from, to)) {
    const allowed = transitions[from];
    throw new AppError(
      'INVALID_STATE',
      `delivery ${deliveryId} is ${from}; it cannot become ${to}${allowed.length ? ` (from ${from} it can become: ${allowed.join(', ')})` : ''}`,
      { details: { deliveryId, from, to } },
    );
  }
}
