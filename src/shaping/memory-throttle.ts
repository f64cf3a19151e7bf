import {
  connectionPollMs,
  newLeaseId,
  takePermits,
  type ConnectionGrant,
  type MessageGrant,
  type RateLimit,
  type ThrottleBackend,
  type ThrottleSnapshot,
} from './throttle.ts';

// In-process throttle: the default for a single MTA process. Same semantics as the Redis backend.

export function createMemoryThrottle(): ThrottleBackend {
  const leases = new Map<string, Map<string, number>>();
  const rates = new Map<string, number>();

  function openLeases(key: string, now: number): Map<string, number> {
    let set = leases.get(key);
    if (!set) {
      set = new Map();
      leases.set(key, set);
    }
    for (const [id, expiresAt] of set) if (expiresAt <= now) set.delete(id);
    return set;
  }

  return {
    kind: 'memory',
    async acquireConnection(key, limit, leaseMs, now): Promise<ConnectionGrant> {
      const set = openLeases(key, now);
      if (set.size < limit) {
        const leaseId = newLeaseId();
        set.set(leaseId, now + leaseMs);
        return { granted: true, leaseId, open: set.size };
      }
      const earliest = Math.min(...set.values());
      return { granted: false, open: set.size, retryInMs: Math.max(1, Math.min(earliest - now, connectionPollMs)) };
    },
    async renewConnection(key, leaseId, leaseMs, now) {
      const set = openLeases(key, now);
      if (!set.has(leaseId)) return false;
      set.set(leaseId, now + leaseMs);
      return true;
    },
    async releaseConnection(key, leaseId) {
      const set = leases.get(key);
      set?.delete(leaseId);
      if (set && set.size === 0) leases.delete(key);
    },
    async acquireMessages(key, limit: RateLimit, count, now): Promise<MessageGrant> {
      const result = takePermits(rates.get(key), now, limit, count);
      if (result.granted > 0) rates.set(key, result.tat);
      return { granted: result.granted, retryInMs: result.retryInMs };
    },
    async snapshot(now): Promise<ThrottleSnapshot> {
      const snapshot: ThrottleSnapshot = { connections: {}, rates: {} };
      for (const key of [...leases.keys()]) {
        const open = openLeases(key, now).size;
        if (open > 0) snapshot.connections[key] = open;
        else leases.delete(key);
      }
      for (const [key, tat] of rates) {
        if (tat > now) snapshot.rates[key] = { bookedUntil: tat };
        else rates.delete(key);
      }
      return snapshot;
    },
    async close() {},
  };
}
