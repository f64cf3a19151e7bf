// The connection pool's decisions over one path's counts, pure: how many connections to open, how
// many message permits to ask the throttle for, how many queued messages to hand back to the
// database when the path's rate cannot reach them soon.

/** What a path holds at one moment. */
export interface PathCounts {
  /** Messages waiting for a connection. */
  queued: number;
  /** Message permits held (Infinity without a throttle). */
  permits: number;
  /** Open connections that can take another message (not retiring after QUIT). */
  usable: number;
  /** Open connections, retiring ones included. */
  open: number;
  /** Connections being opened. */
  opening: number;
  /** Closed connections the remote server may still count (connection-pool.ts's closeGraceMs). */
  draining: number;
}

/**
 * Connections to open now: only for permitted work no connection will pick up, within the path's
 * cap. The first connection opens without a permit: it resolves the path's address, which permits
 * are counted on. None while every slot of the path is leased (`waitingForLease`).
 */
export function connectionsToOpen(counts: PathCounts, maxConnections: number, waitingForLease: boolean): number {
  if (waitingForLease) return 0;
  const { queued, permits, usable, open, opening, draining } = counts;
  const demand = Math.min(queued, permits >= 1 ? permits : open + opening === 0 ? 1 : 0);
  return Math.max(0, Math.min(demand - opening - usable, maxConnections - open - opening - draining));
}

/**
 * Message permits to ask for in one batch (0 = do not ask now). Only a path with a live (or
 * reconnecting) connection books permits: permits booked while waiting for a lease held by another
 * MTA process would be taken from the shared rate, unused.
 */
export function permitsToAsk(counts: PathCounts, permitBatch: number): number {
  const want = counts.queued - counts.permits;
  const connecting = counts.usable > 0 || counts.opening > 0 || counts.draining > 0;
  if (want <= 0 || !connecting) return 0;
  return Math.min(want, permitBatch);
}

/**
 * A rate-bound path keeps what its rate sends within the hold horizon (plus a margin); the rest
 * (returned count, taken from the tail of the queue) waits in the database.
 */
export function surplusToHold(counts: PathCounts, holdHorizonMs: number, retryInMs: number): number {
  const keep = counts.permits + Math.ceil((1.5 * holdHorizonMs) / Math.max(retryInMs, 1)) + 10;
  return Math.max(0, counts.queued - keep);
}

/**
 * A path keeps the messages it would send within `keepForMs` at the pace it took them in the last
 * window (plus a margin); the rest (returned count, from the tail) waits in the database. A
 * tarpitting or silent MX takes few: without this its messages filled the memory the claim loop
 * waits on (half of maxQueued), and every other domain waited for it.
 */
export function slowPathSurplus(queued: number, takenInWindow: number, windowMs: number, keepForMs: number): number {
  const keep = Math.ceil((1.5 * takenInWindow * keepForMs) / Math.max(windowMs, 1)) + 10;
  return Math.max(0, queued - keep);
}
