import type { Logger } from '../common/logger.ts';
import type { MtaStore } from './mta-store.ts';

// The claims' lease of one MTA node: renewed every lease/3 (a live node's claims never lapse), other
// nodes' expired claims taken back now and then. If renewal fails for long, no transaction starts
// on claims another node could soon take back.

export interface ClaimLease {
  /** Renews and recovers when due; called once per turn of the claim loop. */
  maintain(now: number): Promise<void>;
  /** Whether a claimed message may still start its SMTP transaction. */
  safeAt(now: number): boolean;
  /** The claims were just taken (start): safe for half a lease. */
  restart(now: number): void;
}

export interface ClaimLeaseOptions {
  store: Pick<MtaStore, 'renewClaims' | 'recoverExpiredClaims' | 'heartbeatNode'>;
  /** The node id this process registered (mta_nodes), known from start on. */
  nodeId: () => string;
  pid: number;
  leaseMs: number;
  logger: Logger;
}

export function createClaimLease(options: ClaimLeaseOptions): ClaimLease {
  const { store, leaseMs, logger } = options;
  let safeUntil = 0;
  let lastRenewAt = 0;
  let lastRecoverAt = 0;
  return {
    async maintain(now) {
      if (now - lastRenewAt >= leaseMs / 3 || now < lastRenewAt) {
        // The process's heartbeat and its claims' lease move together.
        if (!(await store.heartbeatNode(options.nodeId(), options.pid, now)))
          logger.error({ nodeId: options.nodeId() }, 'this MTA node id was taken over by another process');
        await store.renewClaims(options.nodeId(), now, leaseMs);
        lastRenewAt = now;
        safeUntil = now + leaseMs / 2;
      }
      if (now - lastRecoverAt >= Math.min(30_000, leaseMs / 2) || now < lastRecoverAt) {
        const recovered = await store.recoverExpiredClaims(now);
        if (recovered > 0) logger.warn({ recovered }, 'took back expired claims of other nodes');
        lastRecoverAt = now;
      }
    },
    safeAt: (now) => now <= safeUntil,
    restart(now) {
      lastRenewAt = now;
      safeUntil = now + leaseMs / 2;
    },
  };
}
