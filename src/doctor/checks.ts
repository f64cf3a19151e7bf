import { databaseCheck } from './check-database.ts';
import { deliveryBouncesCheck } from './check-delivery-bounces.ts';
import { deliveryShapingCheck } from './check-delivery-shaping.ts';
import { deliveryStuckCheck } from './check-delivery-stuck.ts';
import { midsourcingCheck } from './check-midsourcing.ts';
import { trackingLagCheck } from './check-tracking-lag.ts';
import { workflowsCheck } from './check-workflows.ts';
import type { DoctorCheck, DoctorSettings, Finding, Severity } from './finding.ts';
import type { DoctorSnapshot } from './snapshot.ts';

// Every check, in the order operators read them: deliveries first, then the platform.

export const doctorChecks: readonly DoctorCheck[] = [deliveryStuckCheck, deliveryShapingCheck, deliveryBouncesCheck, workflowsCheck, trackingLagCheck, databaseCheck, midsourcingCheck];

const rank: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

export interface Diagnosis {
  checks: string[];
  findings: Finding[];
}

/** Pure: runs every check (optionally only those about one delivery) and sorts by severity. */
export function diagnose(snapshot: DoctorSnapshot, now: number, settings: DoctorSettings, options: { deliveryId?: number; checks?: readonly DoctorCheck[] } = {}): Diagnosis {
  const checks = options.checks ?? doctorChecks;
  let findings = checks.flatMap((check) => check.run(snapshot, now, settings));
  if (options.deliveryId !== undefined) findings = findings.filter((f) => f.subject === `delivery ${options.deliveryId}`);
  findings = findings.map((f, order) => ({ f, order })).sort((a, b) => rank[a.f.severity] - rank[b.f.severity] || a.order - b.order).map(({ f }) => f);
  return { checks: checks.map((c) => c.name), findings };
}
