import { percent, type DoctorCheck, type Finding, type Severity } from './finding.ts';

// Target problems found by preparation: duplicates removed, quarantined and denylisted addresses
// left out, invalid addresses — each with its share of the target — and a target that leaves
// nothing to send. A large blocked share means the list is stale or bought; duplicates mean the
// list was built by concatenating sources.

const preparedStates = new Set(['prepared', 'start_pending', 'in_progress', 'paused', 'finished', 'stopped', 'failed']);

export const targetCheck: DoctorCheck = {
  name: 'target',
  description:
    'prepared deliveries whose target is empty or lost a large share to duplicates, quarantine, denylist or invalid addresses',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    for (const delivery of snapshot.deliveries) {
      if (!preparedStates.has(delivery.state)) continue;
      const { count, excluded, exclusions } = delivery.target;
      if (count === 0) continue; // not prepared by this instance (mid-sourcing execution side, old rows)
      const subject = `delivery ${delivery.id}`;
      const evidence = { deliveryId: delivery.id, target: count, excluded, exclusions };
      if (excluded >= count) {
        findings.push({
          check: 'target',
          severity: 'critical',
          subject,
          symptom: `all ${count} recipients of the target were excluded: nothing to send`,
          cause: `exclusions: ${describe(exclusions)}`,
          fix: 'check the list (`herald list show NAME`) and the quarantine (`herald quarantine list --state quarantined`, `--state denylisted`); import a current list and prepare again',
          evidence,
          impact: count,
        });
        continue;
      }
      const blocked = (exclusions.quarantined ?? 0) + (exclusions.denylisted ?? 0);
      const checks: Array<{ n: number; warn: number; what: string; cause: string; fix: string }> = [
        {
          n: blocked,
          warn: settings.targetBlockedWarningRatio,
          what: `quarantined or denylisted (${exclusions.quarantined ?? 0} quarantined, ${exclusions.denylisted ?? 0} denylisted)`,
          cause:
            'the list holds many addresses that bounced, complained or unsubscribed before: it is stale, bought or not cleaned at its source',
          fix: 'the exclusions protect the sending reputation, keep them; clean the list at its source (drop the quarantined and denylisted addresses: `herald quarantine list --state quarantined`) and confirm opt-in of old segments',
        },
        {
          n: exclusions.duplicate ?? 0,
          warn: settings.targetDuplicateWarningRatio,
          what: 'duplicates (the same mailbox more than once, case variants included)',
          cause: 'the list was built by concatenating sources or imported twice under different spellings',
          fix: 'nothing is sent twice (each mailbox gets one message); deduplicate the list at its source; `herald import recipients` reports repeated rows',
        },
        {
          n: exclusions.invalid_address ?? 0,
          warn: settings.targetInvalidWarningRatio,
          what: 'invalid addresses',
          cause: 'addresses that are not valid email syntax reached the list (typed by hand, broken export)',
          fix: 'fix the export that produces the list; `herald import recipients` rejects them with a reason per line',
        },
      ];
      for (const c of checks) {
        const share = c.n / count;
        if (c.n === 0 || share < c.warn) continue;
        const severity: Severity = share >= 0.5 ? 'critical' : 'warning';
        findings.push({
          check: 'target',
          severity,
          subject,
          symptom: `${c.n} of ${count} recipients (${percent(share)}) were left out as ${c.what}`,
          cause: c.cause,
          fix: c.fix,
          evidence: { ...evidence, share: Math.round(share * 1000) / 1000, threshold: c.warn },
          impact: c.n,
        });
      }
    }
    return findings;
  },
};

function describe(exclusions: Record<string, number>): string {
  const parts = Object.entries(exclusions)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${n} ${reason}`);
  return parts.length > 0 ? parts.join(', ') : 'none recorded';
}
