import { parseVerpAddress } from './verp.ts';

// Who the inbound SMTP role accepts mail for, and how often. Pure: the time is passed in.
// Only VERP addresses of the bounce domain, one optional feedback-loop address and (when
// configured) unsubscribe addresses carrying a verified token are accepted; everything else is
// refused with 550 5.7.1, so the role can never be used as a relay.

export interface RecipientPolicy {
  bounceDomain: string;
  verpPrefix: string;
  /** '' = none. */
  feedbackAddress: string;
  /**
   * RFC 8058 mailto: unsubscribe (configured only with tracking.unsubscribeMailDomain): the verified
   * target of `unsubscribe+TOKEN@domain`, undefined for any other address or a token that fails.
   */
  unsubscribe?: { verify(address: string, now: number): UnsubscribeTarget | undefined };
}

export interface UnsubscribeTarget {
  deliveryId: number;
  logId: number;
}

export type RecipientDecision = { ok: true; logId: string | null; unsubscribe?: UnsubscribeTarget } | { ok: false; code: number; message: string };

export function decideRecipient(address: string, policy: RecipientPolicy, now: number): RecipientDecision {
  const lower = address.trim().toLowerCase();
  if (policy.feedbackAddress && lower === policy.feedbackAddress.trim().toLowerCase()) return { ok: true, logId: null };
  const unsubscribe = policy.unsubscribe?.verify(address, now);
  if (unsubscribe) return { ok: true, logId: null, unsubscribe };
  const at = lower.lastIndexOf('@');
  const domain = at > 0 ? lower.slice(at + 1) : '';
  const logId = parseVerpAddress(lower, policy.verpPrefix);
  if (logId && domain === policy.bounceDomain.toLowerCase()) return { ok: true, logId };
  return { ok: false, code: 550, message: '5.7.1 Relaying denied: this host only accepts bounces for its own addresses' };
}

/** Fixed one-minute windows per client address; memory stays bounded by pruning old windows. */
export interface RateWindow {
  /** Counts one message for `client`; false when the client is over its limit in this window. */
  take(client: string, now: number): boolean;
  readonly size: number;
}

export function createRateWindow(limitPerMinute: number, maxClients = 10_000): RateWindow {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    take(client, now) {
      const minute = now - (now % 60_000);
      let entry = windows.get(client);
      if (!entry || entry.start !== minute) {
        if (windows.size >= maxClients) for (const [key, value] of windows) if (value.start !== minute) windows.delete(key);
        entry = { start: minute, count: 0 };
        windows.set(client, entry);
      }
      entry.count++;
      return entry.count <= limitPerMinute;
    },
    get size() {
      return windows.size;
    },
  };
}
