import type { DoctorCheck, Finding } from './finding.ts';

// Preparation failures: the analysis stopped on a template that does not render for a recipient
// (strict Liquid: a variable the recipient's data lacks, a filter given the wrong type), on a
// template that does not parse, or on an empty target. The error names the template, the recipient
// and the field; the doctor lifts them out so the operator knows which column of which row to fix.

export interface PreparationError {
  template: string | null;
  recipient: string | null;
  field: string | null;
}

/** Pure: the template, recipient and field named by a preparation error message. */
export function parsePreparationError(message: string): PreparationError {
  const template = /\b(subject|html|text) template\b/i.exec(message)?.[1]?.toLowerCase() ?? null;
  const recipient = /recipient (\S+?)[:,]? /.exec(`${message} `)?.[1] ?? null;
  const field =
    /undefined (?:variable|filter):? ["']?([\w.[\]-]+)/i.exec(message)?.[1] ??
    /variable ["']?([\w.[\]-]+)["']? (?:is )?(?:undefined|not defined)/i.exec(message)?.[1] ??
    null;
  return { template, recipient, field };
}

export const preparationCheck: DoctorCheck = {
  name: 'preparation',
  description: 'deliveries whose preparation failed, with the template, recipient and field that broke personalization',
  run(snapshot) {
    const findings: Finding[] = [];
    for (const delivery of snapshot.deliveries) {
      if (delivery.state !== 'preparation_failed') continue;
      const error = delivery.lastError ?? 'no error recorded';
      const parsed = parsePreparationError(error);
      const noTarget = /no target list|has no recipients/.test(error);
      const interrupted = /interrupted|no progress|stale/i.test(error);
      const where = [
        parsed.template ? `the ${parsed.template} template` : null,
        parsed.field ? `field "${parsed.field}"` : null,
        parsed.recipient ? `recipient ${parsed.recipient}` : null,
      ].filter((x) => x !== null);
      findings.push({
        check: 'preparation',
        severity: 'critical',
        subject: `delivery ${delivery.id}`,
        symptom: noTarget
          ? `"${delivery.name}" failed preparation: its target is empty`
          : `"${delivery.name}" failed preparation${where.length > 0 ? ` at ${where.join(', ')}` : ''}: nothing was sent`,
        cause: noTarget
          ? `${error}: the list is empty or was not imported (\`herald list show\`)`
          : interrupted
            ? error
            : `personalization broke: ${error}`,
        fix: noTarget
          ? `import the recipients (\`herald import recipients FILE --list NAME\`) or point the delivery at the right list, then \`herald delivery prepare ${delivery.id}\``
          : interrupted
            ? `prepare it again: \`herald delivery prepare ${delivery.id}\``
            : `${parsed.field ? `give every recipient a value for "${parsed.field}" (a column of the import) or use a default in the template (\`{{ ${parsed.field} | default: "" }}\`)` : 'fix the template'}${parsed.recipient ? `; check ${parsed.recipient}'s row` : ''}; then \`herald delivery prepare ${delivery.id}\``,
        evidence: { deliveryId: delivery.id, error, ...parsed },
      });
    }
    return findings;
  },
};
