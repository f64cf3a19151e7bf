import { summarize } from './check-reputation.ts';
import type { DoctorCheck, Finding } from './finding.ts';
import { logsCommand, replyKind } from './replies.ts';
import type { ReplyGroup } from './snapshot.ts';

// Unreachable destinations: MX hosts that refuse the TCP connection, never answer (timeouts), fail
// the TLS handshake, or close the channel with a 421 that is not a "slow down" (RFC 5321 §3.8).
// Unlike throttling (421/450 4.7.x "too many", handled by backoffs and the delivery-shaping check),
// waiting does not help until the host comes back; messages are retried until the validity ends.

const words = {
  refused: 'connections refused',
  timeout: 'timeouts',
  tls: 'TLS failures',
  closed: 'connections closed by the server (421)',
  lost: 'connections lost',
} as const;

export const unreachableCheck: DoctorCheck = {
  name: 'unreachable',
  description:
    'deliveries whose MX hosts refuse connections, time out, fail TLS or close the channel (per MX, with counts; throttling excluded)',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    for (const delivery of snapshot.deliveries) {
      if (delivery.scope === 'recent' || delivery.executionPeer !== null) continue;
      const groups: Array<ReplyGroup & { detail: keyof typeof words }> = [];
      for (const group of delivery.replies) {
        const kind = replyKind(group);
        if (kind.kind === 'unreachable') groups.push({ ...group, detail: kind.detail });
      }
      const perMx = summarize(groups);
      for (const mx of perMx) {
        if (mx.count < settings.replyMinMessages) continue;
        const mine = groups.filter((g) => (g.mxHost ?? g.domain) === mx.destination);
        const byKind: Record<string, number> = {};
        for (const g of mine) byKind[g.detail] = (byKind[g.detail] ?? 0) + g.count;
        const kinds = Object.entries(byKind)
          .sort((a, b) => b[1] - a[1])
          .map(([k, n]) => `${n} ${words[k as keyof typeof words]}`);
        const domains = [...new Set(mine.map((g) => g.domain))].sort();
        const paths = snapshot.shaping.paths.filter((p) => p.mxHost.toLowerCase() === mx.destination.toLowerCase());
        const connections = {
          accepted: paths.reduce((s, p) => s + p.connectionsAccepted, 0),
          refused: paths.reduce((s, p) => s + p.connectionsRefused, 0),
          unreachable: paths.reduce((s, p) => s + p.unreachable, 0),
        };
        const tlsOnly = Object.keys(byKind).every((k) => k === 'tls');
        const expired = mx.failed;
        const pendingShare = delivery.counts.pending > 0 ? mx.pending / delivery.counts.pending : 0;
        const share = delivery.counts.total > 0 ? mx.count / delivery.counts.total : 1;
        findings.push({
          check: 'unreachable',
          severity:
            share < settings.replyWarningShare ? 'info' : expired > 0 || pendingShare >= 0.5 ? 'critical' : 'warning',
          subject: `delivery ${delivery.id}`,
          symptom: `${mx.count} messages to ${domains.join(', ')} could not reach ${mx.destination}: ${kinds.join(', ')} (${mx.pending} pending, ${expired} failed)`,
          cause: tlsOnly
            ? `the TLS handshake with ${mx.destination} fails ("${mx.sample}"): an MX rule requires TLS (tls: required) or the host's TLS is broken; this is not throttling`
            : `${mx.destination} cannot be reached from the sending addresses ("${mx.sample}"): the host is down, a firewall drops port 25, or the destination blocks the source network; this is not throttling (no 4.7.x "slow down" reply)`,
          fix: tlsOnly
            ? `check the MX rule matching ${mx.destination} (\`herald mx match ${mx.destination}\`): set tls to opportunistic in a site rule file (shaping.siteRulesDir) if the host cannot do TLS; otherwise contact its postmaster`
            : `test from the MTA host: \`nc -v ${mx.destination} 25\` from each source address; if the host is down nothing is lost while it comes back (retries follow mta.retryDelaysSeconds until the validity ends); if only some source addresses fail, take them out of shaping.affinities; a wrong static route is in mta.routes`,
          evidence: {
            deliveryId: delivery.id,
            mxHost: mx.destination,
            domains,
            messages: mx.count,
            share: Math.round(share * 1000) / 1000,
            pending: mx.pending,
            failed: expired,
            byKind,
            replies: mx.replies,
            connectionsLastHour: paths.length > 0 ? connections : null,
          },
          impact: mx.count,
          logs: logsCommand(delivery.id, mx.mx ? { mx: mx.mx } : { domain: mx.destination }),
        });
      }
    }
    return findings;
  },
};
