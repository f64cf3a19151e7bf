import { clientKey, defaultIpv6PrefixLength } from '../common/client-address.ts';

// Limits that keep one client from locking the inbound SMTP role out for everyone else. Pure: the
// server calls these as commands arrive (connections per client address: common/client-connections.ts).
//   - commands without progress: a session that keeps talking (NOOP, RSET, refused RCPTs) without
//     a message being accepted is closed.
//   - content held: all sessions together, and one client's sessions together.
// The whole-session deadline is a timer in inbound-server.ts: a byte every few seconds resets the
// idle timeout, nothing resets the deadline.

export interface ProgressCounter {
  /** Counts one command of `session`; false once it is over the limit. */
  command(session: string): boolean;
  /** A message was accepted: the session made progress. */
  progress(session: string): void;
  end(session: string): void;
}

export function createProgressCounter(maxCommandsWithoutProgress: number): ProgressCounter {
  const counts = new Map<string, number>();
  return {
    command(session) {
      const count = (counts.get(session) ?? 0) + 1;
      counts.set(session, count);
      return count <= maxCommandsWithoutProgress;
    },
    progress(session) {
      counts.delete(session);
    },
    end(session) {
      counts.delete(session);
    },
  };
}

/** Why content could not be held: the budget of all sessions, or the share of one client. */
export type BudgetRefusal = 'total' | 'client';

export interface ContentBudget {
  /** Counts `bytes` more held for `address`; a refusal (nothing counted) when either limit would pass. */
  reserve(address: string, bytes: number): BudgetRefusal | undefined;
  release(address: string, bytes: number): void;
  readonly held: number;
}

/**
 * Bytes of message content held at once: `total` for all sessions (fifty clients each sending a
 * 24 MB message held 1.2 GB), and `perClient` for the sessions of one client key together, so one
 * address opening its maxConnectionsPerClient sessions and trickling a large message on each cannot
 * hold the whole budget (every other sender answered 452) until its sessions time out.
 */
export function createContentBudget(
  total: number,
  perClient: number,
  ipv6PrefixLength = defaultIpv6PrefixLength,
): ContentBudget {
  let held = 0;
  const byClient = new Map<string, number>();
  return {
    reserve(address, bytes) {
      const client = clientKey(address, ipv6PrefixLength);
      const mine = byClient.get(client) ?? 0;
      if (held + bytes > total) return 'total';
      if (mine + bytes > perClient) return 'client';
      held += bytes;
      byClient.set(client, mine + bytes);
      return undefined;
    },
    release(address, bytes) {
      if (bytes <= 0) return;
      const client = clientKey(address, ipv6PrefixLength);
      const left = (byClient.get(client) ?? 0) - bytes;
      if (left <= 0) byClient.delete(client);
      else byClient.set(client, left);
      held -= bytes;
    },
    get held() {
      return held;
    },
  };
}
