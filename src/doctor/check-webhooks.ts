import { iso, type DoctorCheck, type Finding } from './finding.ts';

// A webhook subscription paused after failing request after request: its receiver stopped answering
// 2xx, and events pile up in the outbox until someone fixes the receiver and resumes it.

export const webhooksCheck: DoctorCheck = {
  name: 'webhooks',
  description: 'event webhook subscriptions paused or failing',
  run(snapshot) {
    return snapshot.webhooks.flatMap((w): Finding[] => {
      if (w.state === 'paused')
        return [
          {
            check: 'webhooks',
            severity: 'warning',
            subject: `webhook ${w.id}`,
            symptom: `webhook ${w.id} (${w.url}) is paused since ${iso(w.pausedAt ?? 0)}; ${w.backlog} events wait in the outbox`,
            cause: `its receiver failed ${w.consecutiveFailures} requests in a row (last: ${w.lastError ?? 'no error recorded'})`,
            fix: `fix the receiver, then \`herald webhooks resume ${w.id}\` (or POST /api/v1/webhooks/${w.id}/resume); \`herald webhooks delete ${w.id}\` drops it`,
            evidence: { ...w, pausedAt: w.pausedAt === null ? null : iso(w.pausedAt) },
          },
        ];
      if (w.consecutiveFailures > 0)
        return [
          {
            check: 'webhooks',
            severity: 'info',
            subject: `webhook ${w.id}`,
            symptom: `webhook ${w.id} (${w.url}) failed its last ${w.consecutiveFailures} requests; ${w.backlog} events wait`,
            cause: w.lastError ?? 'no error recorded',
            fix: 'check the receiver: it must answer 2xx; events are retried with doubling delays (webhooks.firstRetrySeconds)',
            evidence: { ...w, lastSuccessAt: w.lastSuccessAt === null ? null : iso(w.lastSuccessAt) },
          },
        ];
      return [];
    });
  },
};
