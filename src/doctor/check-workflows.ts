import { dayMs, duration, hourMs, iso, type DoctorCheck, type Finding } from './finding.ts';

const consequences: Record<string, string> = {
  cleanup:
    'delivery logs, tracking events and run history past retention are not purged, and the database is not maintained',
  tracking: 'opens and clicks are not consolidated into the indicators',
  'delivery-manager': 'scheduled deliveries do not start and stale preparations are not failed',
  'deliverability-update': 'MX and bounce rule packs are not updated',
  stats: 'delivery statistics are not computed',
};

// Technical workflows: the last run failed, no success for more than twice the schedule interval
// (overdue), a run still marked running whose holder stopped renewing its lease (a dead node), or
// paused for days (a pause meant for a maintenance window and forgotten).

export const workflowsCheck: DoctorCheck = {
  name: 'workflows',
  description:
    'technical workflows whose last run failed, that are overdue (no success for 2 schedule intervals), or whose run is held by a dead node',
  run(snapshot, now, settings) {
    const findings: Finding[] = [];
    for (const workflow of snapshot.workflows) {
      if (workflow.enabled && workflow.pausedAt !== null) {
        const paused = now - workflow.pausedAt;
        if (paused > settings.workflowPausedWarningHours * hourMs) {
          const critical = paused > settings.workflowPausedCriticalDays * dayMs;
          findings.push({
            check: 'workflows',
            severity: critical ? 'critical' : 'warning',
            subject: `workflow ${workflow.name}`,
            symptom: `paused for ${duration(paused)} (since ${iso(workflow.pausedAt)})`,
            cause: `an operator paused it (\`herald workflows pause ${workflow.name}\`) and it was never resumed: ${consequences[workflow.name] ?? 'the work it does piles up'}`,
            fix: `\`herald workflows resume ${workflow.name}\`, then \`herald workflows run ${workflow.name}\` to catch up now`,
            evidence: {
              pausedAt: iso(workflow.pausedAt),
              pausedHours: Math.round(paused / hourMs),
              warningHours: settings.workflowPausedWarningHours,
              criticalDays: settings.workflowPausedCriticalDays,
              lastSuccessAt: workflow.lastSuccessAt === null ? null : iso(workflow.lastSuccessAt),
            },
          });
        }
        continue;
      }
      if (!workflow.enabled) continue;
      const subject = `workflow ${workflow.name}`;
      const running = workflow.running;
      const leaseAlive =
        running !== null &&
        workflow.lease !== null &&
        workflow.lease.holder === running.holder &&
        workflow.lease.expiresAt > now;
      if (running && !leaseAlive) {
        findings.push({
          check: 'workflows',
          severity: 'critical',
          subject,
          symptom: `run ${running.id} is marked running since ${iso(running.startedAt)} but its node no longer holds the lease`,
          cause: `the node ${running.holder} died or lost the database during the run${workflow.lease ? ` (lease ${workflow.lease.holder === running.holder ? 'expired' : `held by ${workflow.lease.holder}`} at ${iso(workflow.lease.expiresAt)})` : ' (no lease held)'}; no workflows engine has run since to mark it interrupted`,
          fix: `\`herald workflows restart ${workflow.name}\` marks it failed and runs it again from the interrupted step; keep a node with the workflows role running (\`herald start --roles workflows\`)`,
          evidence: {
            runId: running.id,
            holder: running.holder,
            startedAt: iso(running.startedAt),
            lease: workflow.lease ? { holder: workflow.lease.holder, expiresAt: iso(workflow.lease.expiresAt) } : null,
          },
        });
        continue;
      }
      const last = workflow.lastFinished;
      if (last?.status === 'failed') {
        findings.push({
          check: 'workflows',
          severity: 'critical',
          subject,
          symptom: `the last run (${last.id}, ${iso(last.startedAt)}) failed${last.failedStep !== null ? ` at step ${last.failedStep}` : ''}`,
          cause: last.error ?? 'no error recorded',
          fix: `read the step logs with \`herald workflows logs ${workflow.name}\`, fix the cause, then \`herald workflows restart ${workflow.name}\` (resumes from the failed step)`,
          evidence: {
            runId: last.id,
            failedStep: last.failedStep,
            error: last.error,
            startedAt: iso(last.startedAt),
            lastSuccessAt: workflow.lastSuccessAt === null ? null : iso(workflow.lastSuccessAt),
          },
        });
        continue;
      }
      // A skipped run (not configured, e.g. mid-sourcing without peers) is not late.
      if (last?.status === 'skipped' || running) continue;
      const reference = workflow.lastSuccessAt ?? workflow.registeredAt;
      if (now - reference > 2 * workflow.periodMs) {
        findings.push({
          check: 'workflows',
          severity: 'warning',
          subject,
          symptom:
            workflow.lastSuccessAt === null
              ? `never succeeded in the ${duration(now - reference)} since it was registered`
              : `no successful run for ${duration(now - reference)} (last ${iso(reference)})`,
          cause: `it should run every ${duration(workflow.periodMs)} ("${workflow.schedule}"): no node runs the workflows role, or its runs never finish`,
          fix: `keep a node with the workflows role running (\`herald start\` or \`herald start --roles workflows\`); run it once now with \`herald workflows run ${workflow.name}\``,
          evidence: {
            lastSuccessAt: workflow.lastSuccessAt === null ? null : iso(workflow.lastSuccessAt),
            schedule: workflow.schedule,
            periodMinutes: Math.round(workflow.periodMs / 60_000),
            overdueMinutes: Math.round((now - reference - 2 * workflow.periodMs) / 60_000),
          },
        });
      }
    }
    return findings;
  },
};
