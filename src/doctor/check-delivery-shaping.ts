import type { MxStatsView } from '../shaping/stats-view.ts';
import { duration, hourMs, iso, percent, type DoctorCheck, type Finding, type Severity } from './finding.ts';
import type { DeliveryFacts } from './snapshot.ts';

// A delivery in progress that is slow because of shaping: an MX rule's limit binds (messages per
// hour or connections), a provider's "slow down" replies put its rate key in backoff, or the breaker
// suspended a recipient domain. Pending logs are tied to rules through the MX hosts this delivery
// already met for each domain, and to suspensions by domain.

export const deliveryShapingCheck: DoctorCheck = {
  name: 'delivery-shaping',
  description:
    'in-progress deliveries held back by an MX rule limit, a provider backoff or a suspended domain (from the MTA shaping snapshots)',
  run(snapshot, now) {
    const findings: Finding[] = [];
    const explained = new Set<string>();
    for (const node of snapshot.shaping.nodes) if (node.throttleError) findings.push(throttleFinding(node));
    // With no node sending, a rule's pace says nothing about when the messages go (it said "50 min").
    const sending = snapshot.shaping.nodes.some((node) => !node.throttleError);
    for (const delivery of snapshot.deliveries) {
      if (delivery.state !== 'in_progress' || delivery.executionPeer !== null || delivery.counts.pending === 0)
        continue;
      findings.push(...suspensionFindings(delivery, snapshot.shaping, now, explained));
      if (sending || snapshot.shaping.nodes.length === 0)
        findings.push(...ruleFindings(delivery, snapshot.shaping, now, explained));
    }
    // Backoffs and suspensions that no listed delivery explains are still worth knowing.
    for (const backoff of snapshot.shaping.backoffs) {
      if (explained.has(`backoff:${backoff.key}`)) continue;
      explained.add(`backoff:${backoff.key}`);
      findings.push({
        check: 'delivery-shaping',
        severity: 'info',
        subject: `mx rule ${backoff.key.split('|')[0]}`,
        symptom: `rate key ${backoff.key} runs at x${backoff.factor} of its ${backoff.limits.join(' and ')} limit until ${iso(backoff.until)}`,
        cause: `backoff rule "${backoff.rule}" matched ${backoff.evidence.matches} provider replies, e.g. "${backoff.evidence.replies[0] ?? ''}"`,
        fix: 'nothing to do: it reverts by itself at its end; if it keeps coming back, lower maxMessagesPerHour of the rule in a site rule file (shaping.siteRulesDir) and check it with `herald rules check FILE`',
        evidence: {
          rateKey: backoff.key,
          rule: backoff.rule,
          factor: backoff.factor,
          until: iso(backoff.until),
          matches: backoff.evidence.matches,
          node: backoff.nodeId,
        },
      });
    }
    for (const suspension of snapshot.shaping.suspensions) {
      if (explained.has(`suspension:${suspension.domain}`)) continue;
      explained.add(`suspension:${suspension.domain}`);
      findings.push({
        check: 'delivery-shaping',
        severity: 'info',
        subject: `domain ${suspension.domain}`,
        symptom: `sending to ${suspension.domain} is suspended until ${iso(suspension.until)}`,
        cause: suspensionCause(suspension),
        fix: suspensionFix(suspension.until),
        evidence: {
          domain: suspension.domain,
          until: iso(suspension.until),
          ...suspension.evidence,
          node: suspension.nodeId,
        },
      });
    }
    return findings;
  },
};

type Suspension = MxStatsView['suspensions'][number];

function suspensionCause(suspension: Suspension): string {
  const e = suspension.evidence;
  return `the domain breaker saw ${e.errors} errors in ${e.messages} messages (${percent(e.errorRatio)}) and suspended the domain, e.g. "${e.sampleReplies[0] ?? ''}"`;
}

function suspensionFix(until: number): string {
  return `it resumes by itself at ${iso(until)}; read the replies (\`herald mx stats\`) and fix what the provider objects to first; the thresholds are shaping.breaker.errorRatio, minMessages and suspendMinutes`;
}

function suspensionFindings(
  delivery: DeliveryFacts,
  shaping: MxStatsView,
  now: number,
  explained: Set<string>,
): Finding[] {
  const findings: Finding[] = [];
  for (const entry of delivery.pendingByDomain) {
    const suspension = shaping.suspensions.find(
      (s) => s.domain.toLowerCase() === entry.domain.toLowerCase() && s.until > now,
    );
    if (!suspension) continue;
    explained.add(`suspension:${suspension.domain}`);
    const expires = delivery.validUntil !== null && suspension.until >= delivery.validUntil;
    findings.push({
      check: 'delivery-shaping',
      severity: expires ? 'critical' : 'warning',
      subject: `delivery ${delivery.id}`,
      symptom: `${entry.pending} messages to ${entry.domain} wait: the domain is suspended until ${iso(suspension.until)}${expires ? `, after the delivery's validity ends (${iso(delivery.validUntil!)}): they will expire` : ''}`,
      cause: suspensionCause(suspension),
      fix: suspensionFix(suspension.until),
      evidence: {
        deliveryId: delivery.id,
        domain: entry.domain,
        pending: entry.pending,
        until: iso(suspension.until),
        ...suspension.evidence,
      },
      impact: entry.pending,
      logs: `herald delivery logs ${delivery.id} --status pending --domain ${entry.domain}`,
    });
  }
  return findings;
}

function ruleFindings(delivery: DeliveryFacts, shaping: MxStatsView, now: number, explained: Set<string>): Finding[] {
  // rate key -> pending messages of this delivery routed through it
  const pendingByKey = new Map<string, { pending: number; domains: string[] }>();
  for (const entry of delivery.pendingByDomain) {
    const hosts = new Set(entry.mxHosts.map((h) => h.toLowerCase()));
    const keys = [...new Set(shaping.paths.filter((p) => hosts.has(p.mxHost.toLowerCase())).map((p) => p.rateKey))];
    // A domain sent from several public ids drains through as many rate keys at once (a rule not
    // shared has one per id): each takes its part, in proportion to its rate. Charged every pending
    // message, each key said twice the time with two ids, and "will expire" when they would not.
    const rates = keys.map((key) => shaping.rules.find((r) => r.rateKey === key)?.limits.maxMessagesPerHour ?? 0);
    const total = rates.reduce((sum, rate) => sum + rate, 0);
    keys.forEach((key, at) => {
      const value = pendingByKey.get(key) ?? { pending: 0, domains: [] };
      value.pending += total > 0 ? (entry.pending * rates[at]!) / total : entry.pending / keys.length;
      value.domains.push(entry.domain);
      pendingByKey.set(key, value);
    });
  }
  for (const routed of pendingByKey.values()) routed.pending = Math.round(routed.pending);
  const findings: Finding[] = [];
  for (const [key, routed] of pendingByKey) {
    const rule = shaping.rules.find((r) => r.rateKey === key);
    if (!rule || rule.binding === 'none' || routed.pending === 0) continue;
    const limits = rule.limits;
    const hoursToDrain =
      limits.maxMessagesPerHour > 0 ? routed.pending / limits.maxMessagesPerHour : Number.POSITIVE_INFINITY;
    const drainEnd = now + hoursToDrain * hourMs;
    const expires = delivery.validUntil !== null && drainEnd > delivery.validUntil;
    const backoffs = shaping.backoffs.filter((b) => b.key === key);
    const evidence = {
      deliveryId: delivery.id,
      rule: rule.rule,
      rateKey: key,
      binding: rule.binding,
      pendingBehindRule: routed.pending,
      domains: routed.domains,
      messagesLastHour: rule.messages,
      maxMessagesPerHour: Math.round(limits.maxMessagesPerHour),
      configuredMaxMessagesPerHour: limits.configuredMaxMessagesPerHour,
      maxConnections: limits.maxConnections,
      configuredMaxConnections: limits.configuredMaxConnections,
      openConnections: rule.openConnections,
      waiting: rule.waiting,
      hoursToDrain: Math.round(hoursToDrain * 10) / 10,
      validUntil: delivery.validUntil === null ? null : iso(delivery.validUntil),
    };
    const tail = expires
      ? `; at this pace they need ${duration(hoursToDrain * hourMs)}, past the delivery's validity (${iso(delivery.validUntil!)}): the rest will expire`
      : `; at this pace they need ${duration(hoursToDrain * hourMs)}`;
    let severity: Severity = expires ? 'critical' : hoursToDrain > 1 ? 'warning' : 'info';
    let cause: string;
    let fix: string;
    if (rule.binding === 'backoff') {
      explained.add(`backoff:${key}`);
      const first = backoffs[0];
      if (severity === 'info') severity = 'warning';
      cause = first
        ? `the provider asked to slow down: backoff rule "${first.rule}" matched ${first.evidence.matches} replies like "${first.evidence.replies[0] ?? ''}" and cut the ${first.limits.join(' and ')} limit of MX rule "${rule.rule}" to x${first.factor} until ${iso(first.until)} (${rule.bindingReason})`
        : `MX rule "${rule.rule}" is in backoff: ${rule.bindingReason}`;
      fix = `nothing to change if it recovers: the backoff reverts by itself${first ? ` at ${iso(first.until)}` : ''}; if the provider keeps deferring, lower maxMessagesPerHour of MX rule "${rule.rule}" in a site rule file (shaping.siteRulesDir, checked with \`herald rules check FILE\`); watch it with \`herald mx stats\``;
    } else if (rule.binding === 'maxConnections') {
      cause = `MX rule "${rule.rule}" caps connections: ${rule.bindingReason}`;
      fix = `if the provider accepts more, raise maxConnections of MX rule "${rule.rule}" in a site rule file (shaping.siteRulesDir), check it with \`herald rules check FILE\`; the MTA reloads it by itself`;
    } else {
      cause = `MX rule "${rule.rule}" caps the rate at ${Math.round(limits.maxMessagesPerHour)} messages per hour: ${rule.bindingReason}`;
      // The what-if the fix would give: the configured rate doubled.
      const doubled = Math.max(1, Math.round(limits.configuredMaxMessagesPerHour * 2));
      const doubledMs = (routed.pending / doubled) * hourMs;
      fix = `if the provider accepts more, raise maxMessagesPerHour of MX rule "${rule.rule}" in a site rule file (shaping.siteRulesDir), check it with \`herald rules check FILE\`: at ${doubled} per hour these messages would need ${duration(doubledMs)} (finish about ${iso(now + doubledMs)}; \`herald delivery eta ${delivery.id} --set ${rule.rule}.maxMessagesPerHour=${doubled}\` for the whole delivery); or send from more public ids (shaping.affinities, \`--add-affinity NAME\`) when the rule is not shared`;
    }
    findings.push({
      check: 'delivery-shaping',
      severity,
      subject: `delivery ${delivery.id}`,
      symptom: `${routed.pending} messages to ${routed.domains.join(', ')} wait behind MX rule "${rule.rule}"${tail}`,
      cause,
      fix,
      evidence,
      impact: routed.pending,
      logs: `herald delivery logs ${delivery.id} --status pending${routed.domains.length === 1 ? ` --domain ${routed.domains[0]}` : ''}`,
    });
  }
  return findings;
}

/** An MTA node whose last snapshot says it could not reach the shared throttle (Redis). */
function throttleFinding(node: MxStatsView['nodes'][number]): Finding {
  return {
    check: 'delivery-shaping',
    severity: 'critical',
    subject: `mta node ${node.nodeId}`,
    symptom: `MTA node ${node.nodeId} opens no connection and sends no message: it cannot read the limits it shares with the other nodes`,
    cause: node.throttleError ?? 'the shared throttle does not answer',
    fix: 'check that Redis answers at shaping.redisUrl from this host (`redis-cli -u URL ping`); sending resumes by itself when it does, and no MX rule limit is exceeded meanwhile',
    evidence: { node: node.nodeId, snapshotAt: iso(node.takenAt), backend: node.backend },
  };
}
