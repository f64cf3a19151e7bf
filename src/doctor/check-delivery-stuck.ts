import { duration, iso, minuteMs, type DoctorCheck, type Finding } from './finding.ts';

// Deliveries that do not move: `preparing` long after its process should have finished,
// `start_pending` past its scheduled time (delivery-manager starts those), and `in_progress` with
// due messages but no delivery log update for a while (no MTA claims them, or they all fail locally).

/** A delivery received from a mid-sourcing peer is reported after this long without a new part (a
 *  push's parts arrive seconds apart; one retrying waits up to minutes between attempts). */
const receivedPartsQuietMinutes = 10;

export const deliveryStuckCheck: DoctorCheck = {
  name: 'delivery-stuck',
  description:
    'deliveries stuck in preparing, start_pending past their time, or in progress with due messages and no MTA progress',
  run(snapshot, now, settings) {
    const findings: Finding[] = [];
    const mtaNodes = snapshot.shaping.nodes.map((n) => n.nodeId);
    const manager = snapshot.workflows.find((w) => w.name === 'delivery-manager');
    for (const delivery of snapshot.deliveries) {
      const subject = `delivery ${delivery.id}`;
      const received = delivery.receivedFrom;
      const quietMinutes = received ? receivedPartsQuietMinutes : settings.preparingStuckMinutes;
      if (delivery.state === 'preparing' && now - delivery.updatedAt > quietMinutes * minuteMs) {
        const evidence = {
          deliveryId: delivery.id,
          state: delivery.state,
          since: iso(delivery.updatedAt),
          minutes: Math.round((now - delivery.updatedAt) / minuteMs),
          thresholdMinutes: quietMinutes,
          logs: delivery.counts.total,
        };
        if (received) {
          // Received from a marketing peer: `preparing` while its parts arrive, never prepared here.
          findings.push({
            check: 'delivery-stuck',
            severity: 'warning',
            subject,
            symptom: `"${delivery.name}", received from the mid-sourcing peer "${received.peer}" (its delivery ${received.sourceDeliveryId}), has had no new part for ${duration(now - delivery.updatedAt)} (since ${iso(delivery.updatedAt)}); ${delivery.counts.total} recipients in so far`,
            cause: `the marketing instance "${received.peer}" stopped pushing it (its push retrying or given up, that instance down, or the link between them cut): a received delivery stays preparing until every part is in and the peer finalizes it`,
            fix: `on "${received.peer}": \`herald mid status\` shows the push and its last error, \`herald mid push ${received.sourceDeliveryId}\` resumes it (only the missing parts are sent); do not prepare it here. After 7 days without a part, the delivery-manager workflow's fail-stale-preparations step fails it and deletes what was received`,
            evidence: { ...evidence, peer: received.peer, sourceDeliveryId: received.sourceDeliveryId },
            impact: delivery.counts.total,
          });
        } else
          findings.push({
            check: 'delivery-stuck',
            severity: 'critical',
            subject,
            symptom: `"${delivery.name}" has been preparing for ${duration(now - delivery.updatedAt)} (since ${iso(delivery.updatedAt)})`,
            cause: `the process that ran \`herald delivery prepare\` stopped before it finished (killed, machine lost): a live preparation renews its lease every third of delivery.preparationLeaseSeconds (${Math.round(settings.preparingStuckMinutes * 60)} s), this one has not since ${iso(delivery.updatedAt)}; the logs it wrote stay until it is prepared again or failed`,
            fix: `\`herald delivery prepare ${delivery.id}\` takes it over at once (its process stopped renewing its lease, delivery.preparationLeaseSeconds); otherwise the delivery-manager workflow's fail-stale-preparations step fails it (with its logs deleted) once it has made no progress for workflows.stalePreparationMinutes`,
            evidence,
            impact: delivery.counts.total,
          });
      }
      if (
        delivery.state === 'start_pending' &&
        delivery.scheduledAt !== null &&
        now - delivery.scheduledAt > settings.startPendingLateMinutes * minuteMs
      ) {
        const managerState = manager ? workflowLine(manager, now) : 'not registered';
        findings.push({
          check: 'delivery-stuck',
          severity: 'critical',
          subject,
          symptom: `scheduled for ${iso(delivery.scheduledAt)}, still start_pending ${duration(now - delivery.scheduledAt)} later`,
          cause: `scheduled deliveries are started by the delivery-manager workflow (every 5 minutes), which has not done it: ${managerState}`,
          fix: 'run it now with `herald workflows run delivery-manager`, and keep a node with the workflows role running (`herald start`, or `herald start --roles workflows`); `herald workflows show delivery-manager` shows its runs',
          evidence: {
            deliveryId: delivery.id,
            scheduledAt: iso(delivery.scheduledAt),
            lateMinutes: Math.round((now - delivery.scheduledAt) / minuteMs),
            deliveryManager: manager
              ? {
                  lastSuccessAt: manager.lastSuccessAt === null ? null : iso(manager.lastSuccessAt),
                  lastStatus: manager.lastFinished?.status ?? null,
                  paused: manager.pausedAt !== null,
                }
              : null,
          },
          impact: delivery.counts.pending,
        });
      }
      if (delivery.state === 'in_progress' && delivery.executionPeer === null && delivery.duePending > 0) {
        const lastMove = delivery.lastLogUpdateAt ?? delivery.startedAt ?? delivery.updatedAt;
        if (now - lastMove <= settings.stalledAfterMinutes * minuteMs) continue;
        const noMta = mtaNodes.length === 0;
        findings.push({
          check: 'delivery-stuck',
          severity: 'critical',
          subject,
          symptom: `${delivery.duePending} messages are due but no message got an outcome for ${duration(now - lastMove)} (last one ${iso(lastMove)})`,
          cause: noMta
            ? `no MTA is running: no MTA node wrote a shaping snapshot in the last ${settings.shapingSnapshotMaxAgeSeconds} s, so nothing claims the messages`
            : `MTA nodes are running (${mtaNodes.join(', ')}) but none makes progress on this delivery: look at \`herald mx stats\` for a binding limit, refused connections or unreachable MX hosts`,
          fix: noMta
            ? 'start an MTA: `herald start` (every role) or `herald start --roles mta` on the sending machine, with the same database'
            : 'check `herald mx stats` (backoffs, suspensions, refused/unreachable per path) and the MTA logs; `herald delivery show ' +
              delivery.id +
              '` shows the last replies by reason',
          evidence: {
            deliveryId: delivery.id,
            duePending: delivery.duePending,
            pending: delivery.counts.pending,
            lastLogUpdateAt: delivery.lastLogUpdateAt === null ? null : iso(delivery.lastLogUpdateAt),
            stalledMinutes: Math.round((now - lastMove) / minuteMs),
            thresholdMinutes: settings.stalledAfterMinutes,
            mtaNodes,
          },
          impact: delivery.duePending,
          logs: `herald delivery logs ${delivery.id} --status pending`,
        });
      }
    }
    return findings;
  },
};

function workflowLine(
  workflow: {
    pausedAt: number | null;
    enabled: boolean;
    lastSuccessAt: number | null;
    lastFinished: { status: string; error: string | null } | null;
  },
  now: number,
): string {
  if (!workflow.enabled) return 'it is disabled (workflows.overrides.delivery-manager.enabled)';
  if (workflow.pausedAt !== null) return `it is paused since ${iso(workflow.pausedAt)}`;
  if (workflow.lastFinished?.status === 'failed')
    return `its last run failed: ${workflow.lastFinished.error ?? 'unknown error'}`;
  return workflow.lastSuccessAt === null
    ? 'it never ran (no node runs the workflows role?)'
    : `its last success was ${duration(now - workflow.lastSuccessAt)} ago`;
}
