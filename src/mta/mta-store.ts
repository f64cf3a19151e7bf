import type { Store } from '../store/database.ts';
import type { Outcome } from './outcome.ts';

// What the MTA needs from storage. The MTA owns this interface; src/mta/queue-store.ts implements
// it for SQLite and PostgreSQL. Every method is one short statement or one short transaction.

/** A delivery log claimed by this node ('sending'), with what is needed to build its message. */
export interface ClaimedLog {
  id: number;
  deliveryId: number;
  email: string;
  /** Punycode, lower-case. */
  domain: string;
  /** JSON text of the personalization values. */
  data: string;
  /** Attempts made before this one. */
  attempts: number;
  /** When the claim lapses and another node may take the log back. */
  claimedUntil: number;
}

export interface DeliveryContent {
  id: number;
  state: string;
  fromAddress: string;
  fromName: string | null;
  replyTo: string | null;
  subjectTemplate: string;
  htmlTemplate: string | null;
  textTemplate: string | null;
  /** Soft failures are retried until then; null means no limit. */
  validUntil: number | null;
  /** The affinity (pool of source addresses) the delivery sends from; null = `default`. */
  affinity: string | null;
  /** Fair share of the MX paths it shares with other deliveries (migration 0031, fair-share.ts). */
  priority: number;
  weight: number;
  /** deliveries.last_error: the MTA clears its own "sending held" note once the problem is gone. */
  lastError?: string | null;
}

/** The process that holds a node id (table mta_nodes). */
export interface NodeHolder {
  nodeId: string;
  host: string;
  pid: number;
  heartbeatAt: number;
}

export interface MtaStore {
  /**
   * Takes `node.nodeId` for this process when no process holds it or its holder's heartbeat is
   * older than `expiredBefore`; otherwise returns the live holder. One statement: two processes
   * starting at once cannot both win.
   */
  registerNode(
    node: { nodeId: string; host: string; pid: number },
    now: number,
    expiredBefore: number,
  ): Promise<{ kind: 'registered' } | { kind: 'held'; holder: NodeHolder }>;
  /** Takes over a node id whose holder (`previous`, on this host) is known to be gone. */
  takeOverNode(
    node: { nodeId: string; host: string; pid: number },
    previous: NodeHolder,
    now: number,
  ): Promise<boolean>;
  /** The heartbeat of this process's node id; false when another process took it over. */
  heartbeatNode(nodeId: string, pid: number, now: number): Promise<boolean>;
  unregisterNode(nodeId: string, pid: number): Promise<void>;
  /** Moves up to `limit` due pending logs of in-progress deliveries to 'sending' for this node, oldest due first. */
  claimDue(nodeId: string, now: number, limit: number, leaseMs: number): Promise<ClaimedLog[]>;
  /**
   * Writes every outcome in ONE transaction; an outcome only applies to a log still claimed by
   * `nodeId`. `within`, when given, runs in that same transaction (the address events the outcomes
   * cause): both commit, or neither does.
   */
  recordOutcomes(nodeId: string, outcomes: readonly Outcome[], within?: (trx: Store) => Promise<void>): Promise<void>;
  /** Extends the lease of every log this node holds (heartbeat: a live node's claims never lapse). */
  renewClaims(nodeId: string, now: number, leaseMs: number): Promise<number>;
  /** This node's 'sending' logs back to pending (graceful stop; at start, after a crash). Returns how many. */
  releaseClaims(nodeId: string, now: number): Promise<number>;
  /** Other nodes' claims whose lease ran out, back to pending. Returns how many. */
  recoverExpiredClaims(now: number): Promise<number>;
  loadDeliveryContent(deliveryId: number): Promise<DeliveryContent | undefined>;
  /** The delivery's state alone (checked as each queued message's turn comes); undefined when it is gone. */
  deliveryState(deliveryId: number): Promise<string | undefined>;
  /** In-progress deliveries with no pending or sending log become 'finished'; returns their ids. */
  finishCompletedDeliveries(now: number): Promise<number[]>;
  /**
   * PostgreSQL: folds the counter deltas of deliveries whose outcomes crowded a counter
   * (src/delivery/log-counts-store.ts), so readers sum few rows while a delivery sends. Returns how
   * many (delivery, counter) pairs were folded; 0 on SQLite.
   */
  foldLogCounts(): Promise<number>;
  /** The earliest next_attempt_at of a pending log of an in-progress delivery, or null. */
  nextDueAt(): Promise<number | null>;
  /** Sets (or clears with null) deliveries.last_error: why the MTA holds the delivery's messages (unknown affinity). */
  noteDeliveryProblem?(deliveryId: number, message: string | null, now: number): Promise<void>;
}
