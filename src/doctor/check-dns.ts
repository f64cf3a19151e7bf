import type { DoctorCheck, Finding, Severity } from './finding.ts';
import type { DoctorSnapshot } from './snapshot.ts';
import { logsCommand, replyKind } from './replies.ts';

// DNS failures, per recipient domain: SERVFAIL and timeouts are the resolver's or the domain's DNS
// being broken (temporary: the messages wait), NXDOMAIN and null MX (RFC 7505) are domains that take
// no mail (hard failures: list quality). The resolver used is named, since a broken or rate-limited
// resolver makes every domain fail at once.

const words = {
  servfail: 'SERVFAIL',
  timeout: 'timeouts',
  lookup_failed: 'failed lookups',
  no_address: 'MX hosts without an address',
  nxdomain: 'NXDOMAIN (no such domain)',
  null_mx: 'null MX (accepts no mail)',
} as const;

type Detail = keyof typeof words;
const temporary = new Set<Detail>(['servfail', 'timeout', 'lookup_failed', 'no_address']);

export const dnsCheck: DoctorCheck = {
  name: 'dns',
  description:
    'deliveries whose recipient domains fail to resolve: SERVFAIL, timeouts, NXDOMAIN, null MX, per domain with the resolver used; domains still sent to with their last good DNS answer while DNS fails',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    const servers = snapshot.configuration.resolverServers;
    const resolver = servers.length > 0 ? servers.join(', ') : 'the system resolver (/etc/resolv.conf)';
    for (const delivery of snapshot.deliveries) {
      if (delivery.scope === 'recent' || delivery.executionPeer !== null) continue;
      const byDomain = new Map<
        string,
        { count: number; pending: number; failed: number; kinds: Partial<Record<Detail, number>>; sample: string }
      >();
      for (const group of delivery.replies) {
        const kind = replyKind(group);
        if (kind.kind !== 'dns') continue;
        const entry = byDomain.get(group.domain) ?? {
          count: 0,
          pending: 0,
          failed: 0,
          kinds: {},
          sample: group.sample,
        };
        entry.count += group.count;
        if (group.status === 'pending') entry.pending += group.count;
        else entry.failed += group.count;
        entry.kinds[kind.detail] = (entry.kinds[kind.detail] ?? 0) + group.count;
        byDomain.set(group.domain, entry);
      }
      const temporaryDomains = [...byDomain.entries()].filter(([, e]) =>
        Object.keys(e.kinds).some((k) => temporary.has(k as Detail)),
      );
      const temporaryTotal = temporaryDomains.reduce((sum, [, e]) => sum + e.count, 0);
      // Several domains failing temporarily at once point at the resolver, not at the domains.
      const resolverSuspect = temporaryDomains.length >= 3;
      for (const [domain, entry] of [...byDomain.entries()].sort((a, b) => b[1].count - a[1].count)) {
        if (entry.count < settings.replyMinMessages) continue;
        const kinds = Object.entries(entry.kinds)
          .sort((a, b) => b[1] - a[1])
          .map(([k, n]) => `${n} ${words[k as Detail]}`);
        const isTemporary = Object.keys(entry.kinds).some((k) => temporary.has(k as Detail));
        const share = delivery.counts.total > 0 ? entry.count / delivery.counts.total : 1;
        // The resolver failing for several domains matters at any share; one domain's broken DNS only when it is a real part of the list.
        const severity: Severity = !isTemporary
          ? 'info'
          : resolverSuspect
            ? 'critical'
            : share >= settings.replyWarningShare
              ? 'warning'
              : 'info';
        const permanent = entry.kinds.nxdomain !== undefined || entry.kinds.null_mx !== undefined;
        findings.push({
          check: 'dns',
          severity,
          subject: `delivery ${delivery.id}`,
          symptom: `${entry.count} messages to ${domain}: ${kinds.join(', ')} (${entry.pending} pending, ${entry.failed} failed), resolver ${resolver}`,
          cause: isTemporary
            ? resolverSuspect
              ? `${temporaryDomains.length} domains (${temporaryTotal} messages) fail to resolve temporarily at once ("${entry.sample}"): the resolver ${resolver} is failing, overloaded or rate-limited`
              : `the DNS of ${domain} fails temporarily ("${entry.sample}"): its name servers are broken or unreachable from ${resolver}`
            : `${domain} ${entry.kinds.null_mx ? 'publishes a null MX: it accepts no mail (RFC 7505)' : 'does not exist (NXDOMAIN)'}; "${entry.sample}"`,
          fix: isTemporary
            ? `check the resolver: \`dig MX ${domain} @${servers[0]?.split(':')[0] ?? '<resolver>'}\`; point mta.resolverServers at a working resolver (a local caching resolver such as unbound for bulk sending); the messages wait and are retried (mta.retryDelaysSeconds) until the validity ends`
            : `nothing to retry: these addresses failed as invalid_domain and are quarantined; ${permanent ? 'look for typos of the domain in the list source (e.g. gmial.com) and fix them there' : ''}`,
          evidence: {
            deliveryId: delivery.id,
            domain,
            messages: entry.count,
            pending: entry.pending,
            failed: entry.failed,
            byKind: entry.kinds,
            resolver: servers.length > 0 ? servers : 'system',
            sample: entry.sample,
            domainsFailingTemporarily: temporaryDomains.length,
          },
          impact: entry.count,
          logs: logsCommand(delivery.id, { domain }),
        });
      }
    }
    for (const stale of snapshot.shaping.dnsStale ?? []) findings.push(staleFinding(stale, resolver, servers));
    return findings;
  },
};

/**
 * A domain or MX host the MTA still sends to with its last good DNS answer (RFC 8767): no message
 * fails yet, so no reply shows it; once mta.mxStaleMaxSeconds is over its messages are deferred.
 */
function staleFinding(
  stale: NonNullable<DoctorSnapshot['shaping']['dnsStale']>[number],
  resolver: string,
  servers: readonly string[],
): Finding {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    check: 'dns',
    severity: 'warning',
    subject: `domain ${stale.name}`,
    symptom: `MTA node ${stale.nodeId} sends to ${stale.name} with its last good DNS answer since ${iso(stale.since)}: ${stale.reason}`,
    cause: `the DNS of ${stale.name} fails (SERVFAIL or timeouts) from ${resolver}; its last good answer stands in until ${iso(stale.until)}, then its messages are deferred (dns_temporary)`,
    fix: `check the domain's DNS and the resolver: \`dig MX ${stale.name} @${servers[0]?.split(':')[0] ?? '<resolver>'}\`; mta.mxStaleMaxSeconds sets how long a last good answer stands in`,
    evidence: { name: stale.name, nodeId: stale.nodeId, reason: stale.reason, since: stale.since, until: stale.until },
  };
}
