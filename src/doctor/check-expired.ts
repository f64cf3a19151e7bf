import { duration, iso, percent, type DoctorCheck, type Finding } from './finding.ts';

// Messages that failed as expired before an attempt (local.expired): they waited — paced by an MX
// rule, cut by a backoff, held by a domain suspension, or between retries — until the delivery's
// validity ended. Nothing is wrong with the recipients or the hosts: the validity was too short for
// the pace the MX rules allow. (Messages that expired after failed attempts keep their last reply
// and are explained by the unreachable, DNS and reputation checks.)

export const expiredCheck: DoctorCheck = {
  name: 'expired',
  description:
    'deliveries whose messages expired waiting (MX-rule pace, backoff, suspension) before the validity ended',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    for (const delivery of snapshot.deliveries) {
      if (delivery.scope === 'recent' || delivery.executionPeer !== null) continue;
      const byDomain = new Map<string, number>();
      for (const group of delivery.replies)
        if (group.status === 'failed' && group.code === null && group.category === 'expired')
          byDomain.set(group.domain, (byDomain.get(group.domain) ?? 0) + group.count);
      const expired = [...byDomain.values()].reduce((sum, count) => sum + count, 0);
      if (expired < settings.replyMinMessages) continue;
      const domains = [...byDomain].sort((a, b) => b[1] - a[1]);
      const share = delivery.counts.total > 0 ? expired / delivery.counts.total : 1;
      const validity =
        delivery.validUntil !== null && delivery.startedAt !== null
          ? ` (${duration(delivery.validUntil - delivery.startedAt)} from the start, until ${iso(delivery.validUntil)})`
          : '';
      const top = domains[0]![0];
      findings.push({
        check: 'expired',
        severity: share < settings.replyWarningShare ? 'info' : 'warning',
        subject: `delivery ${delivery.id}`,
        symptom: `${expired} messages (${percent(share)}) expired before they could be tried: ${domains
          .slice(0, 5)
          .map(([domain, count]) => `${count} to ${domain}`)
          .join(', ')}${domains.length > 5 ? `, … (${domains.length} domains)` : ''}`,
        cause: `they waited until the delivery's validity ended${validity}: the MX rules' pace for these domains (messages per hour, connections), a backoff after "slow down" replies or a domain suspension left no time to send them; the recipients and the hosts are not at fault`,
        fix: `give the next delivery a longer validity, or start it earlier; \`herald mx stats\` shows the rule that binds ${top} (Binding column) — raise its maxMessagesPerHour in a site rule file (shaping.siteRulesDir) only if the provider accepts more; these addresses are not quarantined and can be sent again`,
        evidence: {
          deliveryId: delivery.id,
          expired,
          share: Math.round(share * 1000) / 1000,
          byDomain: Object.fromEntries(domains),
        },
        impact: expired,
        logs: `herald delivery logs ${delivery.id} --status failed --reason expired`,
      });
    }
    return findings;
  },
};
