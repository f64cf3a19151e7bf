import { percent, type DoctorCheck, type Finding } from './finding.ts';

// List quality: hard bounces that say the address or its domain does not exist. Providers read a
// high rate of them as a sender who does not clean its lists, and throttle or block it.

const hardReasons = ['user_unknown', 'invalid_domain'] as const;

export const deliveryBouncesCheck: DoctorCheck = {
  name: 'delivery-bounces',
  description: 'deliveries whose user_unknown + invalid_domain failures are a high share of the messages attempted',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    for (const delivery of snapshot.deliveries) {
      // Final deliveries listed for the list-health checks are not re-judged here.
      if (delivery.scope === 'recent') continue;
      const attempted = delivery.counts.sent + delivery.counts.failed;
      if (attempted < settings.hardBounceMinAttempts) continue;
      const byReason = Object.fromEntries(hardReasons.map((reason) => [reason, delivery.failedByReason[reason] ?? 0]));
      const hard = hardReasons.reduce((sum, reason) => sum + byReason[reason]!, 0);
      const ratio = hard / attempted;
      if (ratio < settings.hardBounceWarningRatio) continue;
      findings.push({
        check: 'delivery-bounces',
        severity: ratio >= settings.hardBounceCriticalRatio ? 'critical' : 'warning',
        subject: `delivery ${delivery.id}`,
        symptom: `${hard} of ${attempted} attempted messages (${percent(ratio)}) failed as unknown user or invalid domain`,
        cause: `the list has many addresses that do not exist (user_unknown ${byReason.user_unknown}, invalid_domain ${byReason.invalid_domain}): old, bought or mistyped addresses; providers throttle or block senders above ~${percent(settings.hardBounceWarningRatio)}`,
        fix: `these addresses are quarantined now and left out of the next preparations (\`herald quarantine list --state quarantined\`); find where the list came from and clean it before the next send (confirm opt-in, drop old sources)${delivery.state === 'in_progress' ? `; pause this delivery meanwhile: \`herald delivery pause ${delivery.id}\`` : ''}`,
        evidence: {
          deliveryId: delivery.id,
          attempted,
          hard,
          ratio: Math.round(ratio * 1000) / 1000,
          ...byReason,
          sent: delivery.counts.sent,
          failed: delivery.counts.failed,
        },
        impact: hard,
        logs: `herald delivery logs ${delivery.id} --reason ${byReason.user_unknown! >= byReason.invalid_domain! ? 'user_unknown' : 'invalid_domain'}`,
      });
    }
    return findings;
  },
};
