import { parseVerpAddress, type VerpSigner } from './verp.ts';
import { clientKey, defaultIpv6PrefixLength } from '../common/client-address.ts';

// Who the inbound SMTP role accepts mail for, and how often. Pure: the time is passed in.
// Only signed VERP addresses of the bounce domain (an unsigned or badly signed one is refused: log
// ids are sequential, anyone could name any log), one optional feedback-loop address, postmaster@
// and abuse@ of the bounce domain (RFC 5321 §4.5.1, RFC 2142: kept for review, never applied) and
// (when configured) unsubscribe addresses carrying a verified token are accepted; everything else
// is refused with 550 5.7.1, so the role can never be used as a relay.

/** Role addresses every mail domain must accept (RFC 5321 §4.5.1, RFC 2142 §2). */
const ROLE_LOCAL_PARTS = new Set(['postmaster', 'abuse']);

export interface RecipientPolicy {
  bounceDomain: string;
  verpPrefix: string;
  /** Verifies the MAC of VERP addresses. */
  verp: Pick<VerpSigner, 'verify'>;
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

export type RecipientDecision =
  | {
      ok: true;
      /** The verified log id of a signed VERP address. */
      logId: string | null;
      unsubscribe?: UnsubscribeTarget;
      /** postmaster@ or abuse@ the bounce domain: stored for review, never applied. */
      reviewOnly?: boolean;
    }
  | {
      ok: false;
      code: number;
      message: string;
      /**
       * A VERP address of the bounce domain whose MAC does not verify (unsigned, forged, or signed
       * by a retired key): answered as any relay attempt, but counted apart (someone forging bounces).
       */
      unverifiedVerp: boolean;
    };

export function decideRecipient(address: string, policy: RecipientPolicy, now: number): RecipientDecision {
  const lower = address.trim().toLowerCase();
  if (policy.feedbackAddress && lower === policy.feedbackAddress.trim().toLowerCase()) return { ok: true, logId: null };
  const unsubscribe = policy.unsubscribe?.verify(address, now);
  if (unsubscribe) return { ok: true, logId: null, unsubscribe };
  const at = lower.lastIndexOf('@');
  const domain = at > 0 ? lower.slice(at + 1) : '';
  const ownDomain = domain === policy.bounceDomain.toLowerCase();
  if (ownDomain && ROLE_LOCAL_PARTS.has(lower.slice(0, at))) return { ok: true, logId: null, reviewOnly: true };
  const suffix = parseVerpAddress(lower, policy.verpPrefix);
  const logId = suffix === undefined ? undefined : policy.verp.verify(suffix, now);
  if (logId !== undefined && ownDomain) return { ok: true, logId: String(logId) };
  return {
    ok: false,
    code: 550,
    message: '5.7.1 Relaying denied: this host only accepts bounces for its own addresses',
    unverifiedVerp: ownDomain && lower.startsWith(`${policy.verpPrefix.toLowerCase()}+`),
  };
}

/**
 * Fixed one-minute windows per client (an IPv4 address, an IPv6 network: common/client-address.ts),
 * at most `maxClients` of them.
 *
 * Windows are kept in the order they started (a renewed one moves to the end), so the expired ones
 * are swept from the front, each once: an attacker with many addresses (or many /64s) cannot grow
 * the table past `maxClients`, nor make each new client scan it. When every window in the table
 * belongs to the current minute, a client that has none is answered `untracked` (refused for now)
 * rather than evicting another client's window: evicting would let an attacker push its own
 * throttled windows out with fresh addresses and start over. The cost is that, for the rest of
 * that minute, new clients are refused with a 4xx and retry later (bounce senders retry for days).
 */
export interface RateWindow {
  /** Counts one message from `address`: over its limit in this window, or no room to count it. */
  take(address: string, now: number): RateDecision;
  readonly size: number;
}

export type RateDecision = 'allowed' | 'over_limit' | 'untracked';

export function createRateWindow(
  limitPerMinute: number,
  maxClients = 10_000,
  ipv6PrefixLength = defaultIpv6PrefixLength,
): RateWindow {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    take(address, now) {
      const client = clientKey(address, ipv6PrefixLength);
      const minute = now - (now % 60_000);
      // Any other minute is over, a later one too (the clock was stepped back): a full table of
      // windows "from the future" would otherwise refuse every new client until time caught up.
      for (const [key, value] of windows) {
        if (value.start === minute) break;
        windows.delete(key);
      }
      let entry = windows.get(client);
      if (entry && entry.start !== minute) {
        windows.delete(client);
        entry = undefined;
      }
      if (!entry) {
        if (windows.size >= maxClients) return 'untracked';
        entry = { start: minute, count: 0 };
        windows.set(client, entry);
      }
      entry.count++;
      return entry.count <= limitPerMinute ? 'allowed' : 'over_limit';
    },
    get size() {
      return windows.size;
    },
  };
}
