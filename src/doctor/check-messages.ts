import { duration, iso, minuteMs, type DoctorCheck, type Finding } from './finding.ts';

// The stuck-message watchdog. A message an MTA claimed (`sending`) is either finished or given back
// within its claim lease; one whose lease expired long ago was claimed by a node that died, and no
// MTA has taken it back since (a starting MTA does). One held far longer than a lease belongs to a
// node that renews its claims but never finishes them (a wedged connection). And due messages that
// no MTA claims for hours: nothing sends them.

export const messagesCheck: DoctorCheck = {
  name: 'messages',
  description:
    'stuck messages: claims whose lease expired and were never taken back, claims held far past a lease, due messages nobody claims',
  run(snapshot, now, settings) {
    const findings: Finding[] = [];
    for (const node of snapshot.messages.claims) {
      const subject = `node ${node.node}`;
      const expiredFor = node.oldestClaimedUntil === null ? 0 : now - node.oldestClaimedUntil;
      if (node.expired > 0 && expiredFor > settings.claimExpiredGraceMinutes * minuteMs) {
        findings.push({
          check: 'messages',
          severity: 'critical',
          subject,
          symptom: `${node.expired} messages are still marked sending by ${node.node}, whose claim expired ${duration(expiredFor)} ago (${iso(node.oldestClaimedUntil!)})`,
          cause: `the MTA node ${node.node} stopped (crash, kill, lost database) while holding them, and no running MTA has taken them back: they are sent by nobody`,
          fix: '`herald delivery release-stuck` gives them back to pending (only claims whose lease expired: a live MTA is never undercut); starting an MTA (`herald start --roles mta`) also takes them back',
          evidence: {
            node: node.node,
            expired: node.expired,
            claimed: node.claimed,
            oldestClaimedUntil: iso(node.oldestClaimedUntil!),
            expiredMinutes: Math.round(expiredFor / minuteMs),
          },
          impact: node.expired,
        });
        continue;
      }
      const heldFor = node.oldestUpdatedAt === null ? 0 : now - node.oldestUpdatedAt;
      if (node.claimed - node.expired > 0 && heldFor > settings.claimHeldTooLongMinutes * minuteMs) {
        findings.push({
          check: 'messages',
          severity: 'warning',
          subject,
          symptom: `${node.node} has held messages in sending for ${duration(heldFor)} (since ${iso(node.oldestUpdatedAt!)}), renewing its claim without finishing them`,
          cause:
            'the node is alive (it renews its claims) but its attempts never end: a connection wedged after DATA, a stuck DNS lookup or an overloaded process',
          fix: `restart the MTA on ${node.node}: a restarted node takes its own claims back at once (they are retried, not lost); its logs show the stuck MX host`,
          evidence: {
            node: node.node,
            claimed: node.claimed,
            heldMinutes: Math.round(heldFor / minuteMs),
            thresholdMinutes: settings.claimHeldTooLongMinutes,
          },
          impact: node.claimed - node.expired,
        });
      }
    }
    const nodes = snapshot.shaping.nodes.map((n) => n.nodeId);
    for (const overdue of snapshot.messages.overdue) {
      findings.push({
        check: 'messages',
        severity: 'warning',
        subject: `delivery ${overdue.deliveryId}`,
        symptom: `${overdue.count} messages have been due for more than ${settings.overdueMessagesHours} h without being claimed (oldest due ${iso(overdue.oldestDueAt)}, ${duration(now - overdue.oldestDueAt)} ago)`,
        cause:
          nodes.length === 0
            ? 'no MTA is running (no shaping snapshot in the last 5 minutes): nothing claims due messages'
            : `MTA nodes run (${nodes.join(', ')}) but do not reach these messages: they claim oldest-due first, so the backlog is older than what they send in ${settings.overdueMessagesHours} h (too little capacity), or the nodes point at another database`,
        fix:
          nodes.length === 0
            ? 'start an MTA: `herald start --roles mta` with this database'
            : `add MTA capacity (another \`herald start --roles mta\` node, mta.maxQueued, mta.claimBatchSize) and check \`herald mx stats\`; \`herald delivery eta ${overdue.deliveryId}\` shows what bounds it`,
        evidence: {
          deliveryId: overdue.deliveryId,
          overdue: overdue.count,
          oldestDueAt: iso(overdue.oldestDueAt),
          overdueMinutes: Math.round((now - overdue.oldestDueAt) / minuteMs),
          thresholdHours: settings.overdueMessagesHours,
          mtaNodes: nodes,
        },
        impact: overdue.count,
        logs: `herald delivery logs ${overdue.deliveryId} --status pending`,
      });
    }
    return findings;
  },
};
