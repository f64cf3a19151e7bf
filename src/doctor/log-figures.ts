import type { DeliveryLogGroup } from './doctor-store.ts';

// What the doctor needs of a delivery's logs, derived from the one grouped pass of
// deliveryLogGroups (doctor-store.ts): counts by status, failures by reason, due pending messages,
// the last change, and the domains with the most pending messages with the MX hosts met for them.

export interface DeliveryLogFigures {
  byStatus: Record<string, number>;
  failedByReason: Record<string, number>;
  duePending: number;
  lastUpdateAt: number | null;
}

export function logFigures(groups: readonly DeliveryLogGroup[]): DeliveryLogFigures {
  const byStatus: Record<string, number> = {};
  const failedByReason: Record<string, number> = {};
  let duePending = 0;
  let lastUpdateAt: number | null = null;
  for (const group of groups) {
    byStatus[group.status] = (byStatus[group.status] ?? 0) + group.count;
    if (group.status === 'failed') {
      const reason = group.failureReason ?? 'not_defined';
      failedByReason[reason] = (failedByReason[reason] ?? 0) + group.count;
    }
    if (group.status === 'pending') duePending += group.due;
    if (group.lastUpdateAt !== null) lastUpdateAt = Math.max(lastUpdateAt ?? 0, group.lastUpdateAt);
  }
  return { byStatus, failedByReason, duePending, lastUpdateAt };
}

/** The `limit` domains with the most pending (or sending) logs, and the MX hosts this delivery met for each. */
export function topPendingDomains(
  groups: readonly DeliveryLogGroup[],
  limit = 20,
): Array<{ domain: string; pending: number; mxHosts: string[] }> {
  const pending = new Map<string, number>();
  const hosts = new Map<string, Set<string>>();
  for (const group of groups) {
    if (group.status === 'pending' || group.status === 'sending')
      pending.set(group.domain, (pending.get(group.domain) ?? 0) + group.count);
    if (group.mxHost !== null) {
      const set = hosts.get(group.domain) ?? new Set<string>();
      set.add(group.mxHost);
      hosts.set(group.domain, set);
    }
  }
  return [...pending]
    .sort(([a, n], [b, m]) => m - n || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, limit)
    .map(([domain, n]) => ({ domain, pending: n, mxHosts: [...(hosts.get(domain) ?? [])].sort() }));
}
