// Whether a delivery's messages may still start. Checked as each queued message's turn comes, not
// only when its claim is grouped: a pause or a stop acknowledged to the operator also holds the
// messages already waiting in the connection pools (before, the content cache's 10 s view let every
// queued message of a stopped delivery go out). A state is read again at most every `refreshMs`.

export interface DeliveryStates {
  /** Whether the delivery is still in progress; false when paused, stopped, gone, or unreadable. */
  sending(deliveryId: number, now: number): Promise<boolean>;
}

/** Deliveries remembered at most; past it the map starts over (finished deliveries are never asked about again). */
const maxRemembered = 1_000;

export function createDeliveryStates(
  load: (deliveryId: number) => Promise<string | undefined>,
  refreshMs = 1_000,
): DeliveryStates {
  const entries = new Map<number, { loadedAt: number; sending: Promise<boolean> }>();
  return {
    sending(deliveryId, now) {
      const entry = entries.get(deliveryId);
      if (entry && now - entry.loadedAt < refreshMs) return entry.sending;
      if (entries.size >= maxRemembered) entries.clear();
      // A state that cannot be read holds the message (released, due again): "stopped" is never missed.
      const sending = load(deliveryId).then(
        (state) => state === 'in_progress',
        () => {
          entries.delete(deliveryId);
          return false;
        },
      );
      entries.set(deliveryId, { loadedAt: now, sending });
      return sending;
    },
  };
}
