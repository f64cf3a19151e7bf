import { configurationCheck } from './check-configuration.ts';
import { databaseCheck } from './check-database.ts';
import { deliveryBouncesCheck } from './check-delivery-bounces.ts';
import { deliveryShapingCheck } from './check-delivery-shaping.ts';
import { deliveryStuckCheck } from './check-delivery-stuck.ts';
import { midsourcingCheck } from './check-midsourcing.ts';
import { trackingLagCheck } from './check-tracking-lag.ts';
import { webhooksCheck } from './check-webhooks.ts';
import { workflowsCheck } from './check-workflows.ts';
import { reputationCheck } from './check-reputation.ts';
import { unreachableCheck } from './check-unreachable.ts';
import { expiredCheck } from './check-expired.ts';
import { dnsCheck } from './check-dns.ts';
import { referencesCheck } from './check-references.ts';
import { contentCheck } from './check-content.ts';
import { preparationCheck } from './check-preparation.ts';
import { targetCheck } from './check-target.ts';
import { listHealthCheck } from './check-list-health.ts';
import { messagesCheck } from './check-messages.ts';
import { importsCheck } from './check-imports.ts';
import { openFilesCheck } from './check-open-files.ts';
import type { DoctorCheck, DoctorSettings, Finding, Severity } from './finding.ts';
import type { DoctorSnapshot } from './snapshot.ts';

// Every check, in the order operators read them: deliveries first, then the platform.

export const doctorChecks: readonly DoctorCheck[] = [
  deliveryStuckCheck,
  messagesCheck,
  deliveryShapingCheck,
  deliveryBouncesCheck,
  reputationCheck,
  unreachableCheck,
  expiredCheck,
  dnsCheck,
  referencesCheck,
  contentCheck,
  preparationCheck,
  importsCheck,
  targetCheck,
  listHealthCheck,
  workflowsCheck,
  trackingLagCheck,
  databaseCheck,
  midsourcingCheck,
  configurationCheck,
  openFilesCheck,
  webhooksCheck,
];

const rank: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

export interface Diagnosis {
  checks: string[];
  findings: Finding[];
}

/**
 * Pure: runs every check (optionally only those about one delivery) and sorts by severity, then by
 * impact (messages affected); about one delivery, by impact first: what slows or fails most of it.
 */
export function diagnose(
  snapshot: DoctorSnapshot,
  now: number,
  settings: DoctorSettings,
  options: { deliveryId?: number; checks?: readonly DoctorCheck[] } = {},
): Diagnosis {
  const checks = options.checks ?? doctorChecks;
  let findings = checks.flatMap((check) => check.run(snapshot, now, settings));
  if (options.deliveryId !== undefined)
    findings = findings.filter((f) => f.subject === `delivery ${options.deliveryId}`);
  const byImpact = (a: Finding, b: Finding) => (b.impact ?? -1) - (a.impact ?? -1);
  const bySeverity = (a: Finding, b: Finding) => rank[a.severity] - rank[b.severity];
  findings = findings
    .map((f, order) => ({ f, order }))
    .sort((a, b) =>
      options.deliveryId !== undefined
        ? byImpact(a.f, b.f) || bySeverity(a.f, b.f) || a.order - b.order
        : bySeverity(a.f, b.f) || byImpact(a.f, b.f) || a.order - b.order,
    )
    .map(({ f }) => f);
  return { checks: checks.map((c) => c.name), findings };
}
