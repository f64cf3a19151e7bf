import type { DomainCount } from '../delivery/progress-store.ts';

// The recipient domains with the most pending messages of a delivery, and the MX hosts it met for
// each, from its counts by domain (countLogsByDomain, progress-store.ts).

/** The `limit` domains with the most pending (or sending) logs, and the MX hosts this delivery met for each. */
export function topPendingDomains(
  counts: readonly DomainCount[],
  limit = 20,
): Array<{ domain: string; pending: number; mxHosts: string[] }> {
  const pending = new Map<string, number>();
  const hosts = new Map<string, Set<string>>();
  for (const count of counts) {
    if (count.outcome === 'pending' || count.outcome === 'deferred')
      pending.set(count.domain, (pending.get(count.domain) ?? 0) + count.count);
    if (count.mxHost !== null) {
      const set = hosts.get(count.domain) ?? new Set<string>();
      set.add(count.mxHost);
      hosts.set(count.domain, set);
    }
  }
  return [...pending]
    .sort(([a, n], [b, m]) => m - n || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, limit)
    .map(([domain, n]) => ({ domain, pending: n, mxHosts: [...(hosts.get(domain) ?? [])].sort() }));
}
