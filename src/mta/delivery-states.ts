import { createTimedPromiseCache } from '../common/timed-promise-cache.ts';

// Whether a delivery's messages may still start. Checked as each queued message's turn comes, not
// only when its claim is grouped: a pause or a stop acknowledged to the operator also holds the
// messages already waiting in the connection pools (before, the content cache's 10 s view let every
// queued message of a stopped delivery go out). A state is read again at most every `refreshMs`.

export interface DeliveryStates {
  /** Whether the delivery is still in progress; false when paused, stopped, gone, or unreadable. */
  sending(deliveryId: number, now: number): Promise<boolean>;
}

export function createDeliveryStates(
  load: (deliveryId: number) => Promise<string | undefined>,
  refreshMs = 1_000,
): DeliveryStates {
  // Finished deliveries are never asked about again: the oldest leave first.
  const states = createTimedPromiseCache<number, string | undefined>({ ttlMs: refreshMs, maxEntries: 1_000 });
  return {
    async sending(deliveryId, now) {
      // A state that cannot be read holds the message (released, due again): "stopped" is never missed.
      const state = await states.get(deliveryId, now, () => load(deliveryId)).catch(() => undefined);
      return state === 'in_progress';
    },
  };
}
