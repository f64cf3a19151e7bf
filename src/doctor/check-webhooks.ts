import { iso, type DoctorCheck, type Finding } from './finding.ts';
import type { WebhookFacts } from './snapshot.ts';

// A webhook subscription paused after failing request after request: its receiver stopped answering
// 2xx, and events pile up in the outbox until someone fixes the receiver and resumes it.

// A receiver on a denied network (webhooks.deniedNetworks: loopback, say, after an upgrade brought
// the list) is not fixed by fixing the receiver: the URL or the configuration must change.
const deniedPrefix = 'destination refused: ';

/** The fix of a subscription failing because its address is denied; undefined for any other failure. */
function deniedFix(w: WebhookFacts, then: string): string | undefined {
  if (w.lastError?.startsWith(deniedPrefix))
    return `Herald may not connect to this receiver's address: subscribe an allowed URL (\`herald webhooks delete ${w.id}\`, then \`herald webhooks create URL\`), or add its network to webhooks.allowedNetworks if it is trusted${then}`;
  return undefined;
}

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
            fix:
              deniedFix(w, `, then \`herald webhooks resume ${w.id}\``) ??
              `fix the receiver, then \`herald webhooks resume ${w.id}\` (or POST /api/v1/webhooks/${w.id}/resume); \`herald webhooks delete ${w.id}\` drops it`,
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
            fix:
              deniedFix(w, ' (retried with doubling delays meanwhile)') ??
              'check the receiver: it must answer 2xx; events are retried with doubling delays (webhooks.firstRetrySeconds)',
            evidence: { ...w, lastSuccessAt: w.lastSuccessAt === null ? null : iso(w.lastSuccessAt) },
          },
        ];
      return [];
    });
  },
};
