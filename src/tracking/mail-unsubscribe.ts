import type { QuarantineSettings } from '../quarantine/types.ts';
import type { Store } from '../store/database.ts';
import { insertTrackingEventsWithin, trackedLog } from './tracking-store.ts';
import { maxTokenLength, type KeyRing } from './token.ts';
import { applyAddressEventsWithin } from '../quarantine/address-events.ts';

// The mailto: half of RFC 8058 one-click unsubscribe: messages list
// <mailto:unsubscribe+TOKEN@unsubscribeMailDomain> beside the https link, and a mail client that
// prefers mail sends an (often empty) message there. The inbound role accepts that recipient only
// when the token verifies as an unsubscribe token, and on receipt denylists the log's address.

export interface MailUnsubscribeTarget {
  deliveryId: number;
  logId: number;
}

export interface MailUnsubscribeVerifier {
  domain: string;
  /** The verified target of `unsubscribe+TOKEN@domain`, or undefined (other address, bad/expired token). Pure. */
  verify(address: string, now: number): MailUnsubscribeTarget | undefined;
}

const prefix = 'unsubscribe+';

export function createMailUnsubscribeVerifier(keyRing: KeyRing, domain: string): MailUnsubscribeVerifier {
  const lowerDomain = domain.trim().toLowerCase();
  return {
    domain: lowerDomain,
    verify(address, now) {
      const trimmed = address.trim();
      const at = trimmed.lastIndexOf('@');
      if (at <= prefix.length || trimmed.slice(at + 1).toLowerCase() !== lowerDomain) return undefined;
      const local = trimmed.slice(0, at);
      if (local.slice(0, prefix.length).toLowerCase() !== prefix) return undefined;
      // The token is base64url: case matters, so it is read from the address as sent (RFC 5321 §2.4).
      const token = local.slice(prefix.length);
      if (token.length > maxTokenLength) return undefined;
      const result = keyRing.verify(token, now);
      if (!result.ok || result.claims.kind !== 'unsubscribe') return undefined;
      return { deliveryId: result.claims.deliveryId, logId: result.claims.logId };
    },
  };
}

/** `already_unsubscribed`: this log's unsubscribe was applied before (the same mail received twice). */
export type MailUnsubscribeOutcome =
  | { kind: 'unsubscribed'; email: string }
  | { kind: 'already_unsubscribed'; email: string }
  | { kind: 'unknown_log' };

/** The writes of one mailto: unsubscribe, named for the test seam that fails one of them. */
export type MailUnsubscribeWrite = 'address_events' | 'tracking_event';

/**
 * Inside the caller's transaction (`trx`), so the unsubscribe commits whole with the caller's other
 * writes (the inbound counters) or not at all: denylists the log's address through the quarantine
 * (source `unsubscribe`, with delivery and log ids) and writes a raw `unsubscribe` event, so the
 * tracking indicators count the opt-out. A replay (the same log's unsubscribe already recorded)
 * writes nothing. `afterWrite` is a test seam: a throw there is a failed write.
 */
export async function applyMailUnsubscribeWithin(
  trx: Store,
  settings: QuarantineSettings,
  target: MailUnsubscribeTarget,
  at: number,
  afterWrite?: (write: MailUnsubscribeWrite) => void | Promise<void>,
): Promise<MailUnsubscribeOutcome> {
  const log = await trackedLog(trx, target.logId);
  // A purged log (or one of another delivery, which a valid token cannot name) has nobody to denylist.
  if (!log || log.deliveryId !== target.deliveryId) return { kind: 'unknown_log' };
  const applied = await applyAddressEventsWithin(
    trx,
    [
      {
        email: log.email,
        at,
        source: 'unsubscribe',
        deliveryId: target.deliveryId,
        deliveryLogId: target.logId,
        note: 'mailto: List-Unsubscribe',
      },
    ],
    settings,
    at,
  );
  await afterWrite?.('address_events');
  // Sent twice (a client retrying): applied and counted once.
  if (applied.duplicates > 0) return { kind: 'already_unsubscribed', email: log.email };
  // Flags 0: a person (or their client) sent a message on purpose; no scanner follows a mailto:.
  await insertTrackingEventsWithin(trx, [
    {
      deliveryId: target.deliveryId,
      logId: target.logId,
      kind: 'unsubscribe',
      linkIndex: null,
      at,
      flags: 0,
      userAgent: 'mailto',
    },
  ]);
  await afterWrite?.('tracking_event');
  return { kind: 'unsubscribed', email: log.email };
}
