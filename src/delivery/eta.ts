import type { CompiledRules } from '../shaping/compiled-rules.ts';

// When a delivery will finish, and what bounds it: its pending messages by recipient domain, each
// domain tied to its MX host (seen by this delivery, or by earlier ones), each MX host to the MX rule
// the MTA applies to it from every source address of the delivery's affinity (a rule shared by its
// public ids is one budget, otherwise each public id has its own), each rule's hourly rate cut by any
// active provider backoff, and the share of attempts the domain defers (a deferred message comes back
// and takes another slot). Messages of deliveries started earlier go first on a shared key (the MTA
// claims by due time). The slowest rate key sets the finish; past the validity the rest expires.
// Pure: the rules, the facts and any what-if overrides are passed in.

export interface EtaDomain {
  domain: string;
  pending: number;
  /** MX host this delivery (or an earlier one) reached for the domain; null = unknown yet. */
  mxHost: string | null;
  /** Attempts of this delivery to the domain: accepted, and deferred (still pending after an attempt). */
  sent: number;
  deferred: number;
}

export interface EtaSource {
  publicId: number;
  weight: number;
}

export interface EtaInput {
  now: number;
  deliveryId: number;
  /** The end of the validity (a prepared delivery: now + its validity). */
  validUntil: number | null;
  domains: readonly EtaDomain[];
  rules: CompiledRules;
  /** Source addresses of the delivery's affinity (public id 0 with weight 1 when none is configured). */
  sources: readonly EtaSource[];
  /** shaping.ratePeriodMs: the period maxMessagesPerHour counts over. */
  ratePeriodMs: number;
  /** Active backoffs by rate key (`rule|shared` or `rule|id<publicId>`): the rate factor. */
  backoffFactors: ReadonlyMap<string, number>;
  /** What-if: rule name (lower case) → maxMessagesPerHour to assume instead of the configured one. */
  ruleOverrides?: ReadonlyMap<string, number>;
  /**
   * Pending messages of other deliveries that go first on a rate key (started earlier: the MTA
   * claims by due time), by rate key. They take their slots of the rate before this delivery's.
   */
  ahead?: ReadonlyMap<string, number>;
}

export interface EtaGroup {
  rateKey: string;
  rule: string;
  pending: number;
  /** Messages of deliveries started earlier that this key sends first. */
  ahead: number;
  domains: string[];
  /** Messages per hour this key gives the delivery: the rule's rate × backoff × accepted share. */
  messagesPerHour: number;
  configuredMessagesPerHour: number;
  backoffFactor: number;
  acceptedShare: number;
  hours: number;
}

export interface Eta {
  deliveryId: number;
  computedAt: number;
  pending: number;
  /** When the last pending message should be accepted; null when nothing is pending. */
  finishAt: number | null;
  hours: number;
  /** The rate key that finishes last: what bounds the delivery. */
  boundBy: EtaGroup | null;
  groups: EtaGroup[];
  validUntil: number | null;
  /** Messages that cannot go before the validity ends at these rates (they will expire). */
  expiring: number;
}

const hourMs = 3_600_000;

export function estimateFinish(input: EtaInput): Eta {
  const sources = input.sources.length > 0 ? input.sources : [{ publicId: 0, weight: 1 }];
  const totalWeight = sources.reduce((sum, s) => sum + Math.max(0, s.weight), 0) || sources.length;
  const perHour = hourMs / input.ratePeriodMs;
  // Domains as a set per group: a provider's rule gathers every domain it hosts (15,000 Google
  // Workspace companies in a list of 50,000), and a test of the list per domain was quadratic.
  const groups = new Map<string, Omit<EtaGroup, 'domains'> & { weightedAccepted: number; domains: Set<string> }>();
  for (const domain of input.domains) {
    if (domain.pending <= 0) continue;
    const host = domain.mxHost ?? domain.domain;
    const attempts = domain.sent + domain.deferred;
    // Every deferral costs a slot of the rate and comes back: the accepted share of the slots.
    const acceptedShare = attempts > 0 ? Math.max(0.05, domain.sent / attempts) : 1;
    for (const source of sources) {
      const share = (totalWeight > 0 ? Math.max(0, source.weight) / totalWeight : 1 / sources.length) || 0;
      if (share === 0) continue;
      const rule = input.rules.match(host, source.publicId);
      // The shaper's rate key (shaping/shaper.ts): per public id unless shared, per MX host for perMxHost rules.
      const rateKey = `${rule.name}|${rule.shared ? 'shared' : `id${source.publicId}`}${rule.perMxHost ? `|${host.toLowerCase()}` : ''}`;
      const configured = rule.maxMessagesPerHour * perHour;
      const override = input.ruleOverrides?.get(rule.name.toLowerCase());
      const limit = override !== undefined ? override * perHour : configured;
      const factor = input.backoffFactors.get(rateKey) ?? 1;
      const pending = domain.pending * share;
      const group = groups.get(rateKey) ?? {
        rateKey,
        rule: rule.name,
        pending: 0,
        ahead: Math.round(input.ahead?.get(rateKey) ?? 0),
        domains: new Set<string>(),
        messagesPerHour: 0,
        configuredMessagesPerHour: Math.round(configured),
        backoffFactor: factor,
        acceptedShare: 1,
        hours: 0,
        weightedAccepted: 0,
      };
      group.pending += pending;
      group.weightedAccepted += pending * acceptedShare;
      group.domains.add(domain.domain);
      group.messagesPerHour = limit * factor;
      groups.set(rateKey, group);
    }
  }
  const result: EtaGroup[] = [...groups.values()].map(({ weightedAccepted, ...group }) => {
    const acceptedShare = group.pending > 0 ? weightedAccepted / group.pending : 1;
    const rate = group.messagesPerHour * acceptedShare;
    return {
      ...group,
      pending: Math.round(group.pending),
      domains: [...group.domains].sort(),
      acceptedShare: Math.round(acceptedShare * 1000) / 1000,
      messagesPerHour: Math.round(rate),
      hours: rate > 0 ? (group.pending + group.ahead) / rate : Number.POSITIVE_INFINITY,
    };
  });
  result.sort((a, b) => b.hours - a.hours || a.rateKey.localeCompare(b.rateKey));
  const pending = input.domains.reduce((sum, d) => sum + Math.max(0, d.pending), 0);
  const bound = result[0] ?? null;
  const hours = bound ? bound.hours : 0;
  const finishAt = pending === 0 ? null : input.now + Math.ceil(hours * hourMs);
  let expiring = 0;
  if (input.validUntil !== null) {
    const left = Math.max(0, (input.validUntil - input.now) / hourMs);
    for (const group of result)
      expiring += Math.max(0, group.pending - Math.max(0, group.messagesPerHour * left - group.ahead));
  }
  return {
    deliveryId: input.deliveryId,
    computedAt: input.now,
    pending,
    finishAt,
    hours: Math.round(hours * 100) / 100,
    boundBy: bound,
    groups: result.map((g) => ({ ...g, hours: Math.round(g.hours * 100) / 100 })),
    validUntil: input.validUntil,
    expiring: Math.round(expiring),
  };
}

/** `RULE.maxMessagesPerHour=N` (the what-if of `herald delivery eta --set`): rule name and rate, or an error text. */
export function parseRuleOverride(text: string): { rule: string; maxMessagesPerHour: number } | string {
  const match = /^([^=]+)\.maxMessagesPerHour=(\d+)$/.exec(text.trim());
  if (!match) return `expected RULE.maxMessagesPerHour=N (got "${text}")`;
  const value = Number(match[2]);
  if (!Number.isSafeInteger(value) || value <= 0)
    return `maxMessagesPerHour must be a positive whole number (got "${match[2]}")`;
  return { rule: match[1]!, maxMessagesPerHour: value };
}
