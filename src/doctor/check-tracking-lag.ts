import { duration, iso, minuteMs, type DoctorCheck } from './finding.ts';

// Opens and clicks reach the indicators only when the tracking workflow consolidates the raw log
// (hourly). Raw events waiting far longer mean the reports are stale.

export const trackingLagCheck: DoctorCheck = {
  name: 'tracking-lag',
  description: 'raw tracking events (opens, clicks) not consolidated into indicators for too long',
  run(snapshot, now, settings) {
    const { oldestPendingAt, watermark, lastEventId } = snapshot.tracking;
    if (oldestPendingAt === null) return [];
    const lag = now - oldestPendingAt;
    if (lag <= settings.trackingLagWarningMinutes * minuteMs) return [];
    const workflow = snapshot.workflows.find((w) => w.name === 'tracking');
    const why = !workflow
      ? 'the tracking workflow is not registered'
      : !workflow.enabled
        ? 'the tracking workflow is disabled (workflows.overrides.tracking.enabled)'
        : workflow.pausedAt !== null
          ? `the tracking workflow is paused since ${iso(workflow.pausedAt)}`
          : workflow.lastFinished?.status === 'failed'
            ? `the tracking workflow's last run failed: ${workflow.lastFinished.error ?? 'no error recorded'}`
            : workflow.lastSuccessAt === null
              ? 'the tracking workflow never succeeded: no node runs the workflows role'
              : `the tracking workflow last succeeded ${duration(now - workflow.lastSuccessAt)} ago: no node runs the workflows role, or its runs do not finish`;
    return [
      {
        check: 'tracking-lag',
        severity: lag > settings.trackingLagCriticalMinutes * minuteMs ? 'critical' : 'warning',
        subject: 'workflow tracking',
        symptom: `${lastEventId - watermark} raw tracking events wait for consolidation, the oldest for ${duration(lag)}: opens, clicks and opt-outs in the reports are stale`,
        cause: why,
        fix: `${workflow?.pausedAt != null ? '`herald workflows resume tracking`, then ' : ''}\`herald workflows run tracking\` consolidates now; keep a node with the workflows role running (\`herald start --roles workflows\`)`,
        evidence: {
          waitingEvents: lastEventId - watermark,
          watermark,
          lastEventId,
          oldestPendingAt: iso(oldestPendingAt),
          lagMinutes: Math.round(lag / minuteMs),
          thresholdMinutes: settings.trackingLagWarningMinutes,
        },
      },
    ];
  },
};
