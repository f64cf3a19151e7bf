import { percent, type DoctorCheck, type Finding } from './finding.ts';

// Reputation and list health after sending: feedback-loop complaints against the thresholds the
// mailbox providers publish (Gmail and Yahoo's 2024 sender requirements: keep the spam rate under
// 0.1 %, never reach 0.3 %), and unsubscribe spikes (a segment that did not expect the mail).

export const listHealthCheck: DoctorCheck = {
  name: 'list-health',
  description:
    'deliveries whose complaint rate passes the providers’ 0.1 % / 0.3 % thresholds, or whose unsubscribes spike',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    const rates = snapshot.deliveries
      .filter((d) => d.counts.sent >= settings.feedbackMinSent)
      .map((d) => ({ id: d.id, rate: d.feedback.unsubscribes / d.counts.sent }));
    for (const delivery of snapshot.deliveries) {
      const sent = delivery.counts.sent;
      if (sent < settings.feedbackMinSent) continue;
      const subject = `delivery ${delivery.id}`;
      const { complaints, unsubscribes } = delivery.feedback;
      const complaintRate = complaints / sent;
      if (complaints >= 2 && complaintRate >= settings.complaintWarningRatio) {
        const critical = complaintRate >= settings.complaintCriticalRatio;
        findings.push({
          check: 'list-health',
          severity: critical ? 'critical' : 'warning',
          subject,
          symptom: `${complaints} spam complaints for ${sent} messages sent (${percent(complaintRate)}), ${critical ? 'above' : 'at or above'} the ${percent(critical ? settings.complaintCriticalRatio : settings.complaintWarningRatio)} providers tolerate`,
          cause:
            'recipients mark the mail as spam: they did not expect it (old or bought addresses, no clear opt-in), cannot find how to unsubscribe, or get it too often; above 0.3 % Gmail and Yahoo filter or refuse the sender',
          fix: `${delivery.state === 'in_progress' ? `pause it: \`herald delivery pause ${delivery.id}\`; ` : ''}the complainers are denylisted and left out from now on (\`herald quarantine list --state denylisted\`); send only to recent engagers for a while, make the unsubscribe link visible (List-Unsubscribe is set), lower the frequency`,
          evidence: {
            deliveryId: delivery.id,
            sent,
            complaints,
            rate: Math.round(complaintRate * 100_000) / 100_000,
            warningRatio: settings.complaintWarningRatio,
            criticalRatio: settings.complaintCriticalRatio,
          },
          impact: complaints,
        });
      }
      const unsubscribeRate = unsubscribes / sent;
      if (unsubscribes >= 5 && unsubscribeRate >= settings.unsubscribeWarningRatio) {
        const others = rates.filter((r) => r.id !== delivery.id).map((r) => r.rate);
        const baseline = others.length > 0 ? others.reduce((a, b) => a + b, 0) / others.length : null;
        findings.push({
          check: 'list-health',
          severity: unsubscribeRate >= settings.unsubscribeCriticalRatio ? 'critical' : 'warning',
          subject,
          symptom: `${unsubscribes} unsubscribes for ${sent} messages sent (${percent(unsubscribeRate)})${baseline !== null ? `, against ${percent(baseline)} for the other recent deliveries` : ''}`,
          cause:
            'an unsubscribe spike: the segment did not expect this content or this frequency (a new source, a reactivation of old addresses, a change of topic)',
          fix: 'look at who unsubscribed (`herald quarantine list --state denylisted`) and where the segment came from; narrow the target to engaged recipients, space the sends; those addresses are left out of later preparations',
          evidence: {
            deliveryId: delivery.id,
            sent,
            unsubscribes,
            rate: Math.round(unsubscribeRate * 10_000) / 10_000,
            baselineRate: baseline === null ? null : Math.round(baseline * 10_000) / 10_000,
            warningRatio: settings.unsubscribeWarningRatio,
          },
          impact: unsubscribes,
        });
      }
    }
    return findings;
  },
};
