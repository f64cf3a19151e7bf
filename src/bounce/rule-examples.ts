import { compileBounceRules } from './classifier.ts';
import type { BouncePack, PackIssue } from './rule-pack.ts';
import { parseSmtpReply } from './smtp-reply.ts';

// A rule's `example` is its test sample: the layered pack must decide that reply with that very
// rule. A later rule shadowed by an earlier one, or a pattern that no longer matches the reply it
// was written for, is reported by `herald bounce rules check` (and refused by `bounce qualify`).

export function checkRuleExamples(pack: BouncePack): PackIssue[] {
  const classifier = compileBounceRules(pack);
  const lineOf = new Map(pack.rules.map((r) => [r.id, r.source]));
  const issues: PackIssue[] = [];
  for (const rule of pack.rules) {
    if (!rule.example) continue;
    const reply = parseSmtpReply(rule.example);
    if (rule.phase?.[0]) reply.phase = rule.phase[0];
    // An MX host glob stands for a host: `*.example.net` → `mx.example.net`.
    if (rule.mxHost?.[0]) reply.mxHost = rule.mxHost[0].replace(/\*/g, 'mx');
    const verdict = classifier.classifyReply(reply, rule.action?.[0] ? { action: rule.action[0] } : undefined);
    if (verdict.ruleId === rule.id) continue;
    const other = verdict.ruleId ? lineOf.get(verdict.ruleId) : undefined;
    issues.push({
      file: rule.source.file,
      line: rule.source.line,
      message: `rule ${rule.id}: its example is decided by ${
        other ? `rule ${verdict.ruleId} (${other.file}:${other.line})` : 'no rule'
      } as ${verdict.category}, not by this rule`,
    });
  }
  return issues;
}
