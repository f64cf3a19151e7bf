import type { BindingLimit, RuleSnapshot } from '../shaping/snapshot.ts';

// `herald_mx_rule_load` and `herald_mx_rule_binding` are labelled by rule and scope, never by MX
// host: a perMxHost rule (the shipped `generic`) has one rate key per MX host, thousands of them
// under one label set. Each label set gets the highest load and the most severe binding of its
// rate keys (setting a gauge once per rate key left whichever came last, and one binding series
// per limit any host was at).

export interface RuleGauge {
  rule: string;
  scope: string;
  load: number;
  binding: BindingLimit;
}

const severity: Record<BindingLimit, number> = { none: 0, maxConnections: 1, maxMessagesPerHour: 2, backoff: 3 };

export function ruleGauges(
  rules: ReadonlyArray<Pick<RuleSnapshot, 'rule' | 'shared' | 'publicId' | 'load' | 'binding'>>,
): RuleGauge[] {
  const byLabels = new Map<string, RuleGauge>();
  for (const rule of rules) {
    const scope = rule.shared ? 'shared' : `id${rule.publicId}`;
    const key = `${rule.rule}\u0000${scope}`;
    const known = byLabels.get(key);
    if (!known) {
      byLabels.set(key, { rule: rule.rule, scope, load: rule.load.messagesPerHour, binding: rule.binding });
      continue;
    }
    known.load = Math.max(known.load, rule.load.messagesPerHour);
    if (severity[rule.binding] > severity[known.binding]) known.binding = rule.binding;
  }
  return [...byLabels.values()];
}
