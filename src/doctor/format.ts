import type { Diagnosis } from './checks.ts';
import type { Severity } from './finding.ts';

// Human output of `herald doctor`: grouped by severity, each finding as symptom / cause / fix.

const headings: Record<Severity, string> = { critical: 'CRITICAL', warning: 'WARNING', info: 'INFO' };

export function formatDiagnosis(
  diagnosis: Diagnosis,
  checkedAt: string,
  scope: string,
  deliveriesNotChecked = 0,
): string[] {
  const notChecked =
    deliveriesNotChecked > 0
      ? [
          `${deliveriesNotChecked} older unfinished deliveries not checked (the doctor reads the 200 newest): \`herald doctor --delivery N\` checks one of them`,
        ]
      : [];
  if (diagnosis.findings.length === 0)
    return [`all checks passed (${diagnosis.checks.length} checks${scope}) at ${checkedAt}`, ...notChecked];
  const lines: string[] = [];
  for (const severity of ['critical', 'warning', 'info'] as const) {
    const group = diagnosis.findings.filter((f) => f.severity === severity);
    if (group.length === 0) continue;
    if (lines.length > 0) lines.push('');
    lines.push(`${headings[severity]} (${group.length})`);
    for (const finding of group) {
      lines.push(`- ${finding.subject} [${finding.check}]`);
      lines.push(`    symptom: ${finding.symptom}`);
      lines.push(`    cause:   ${finding.cause}`);
      lines.push(`    fix:     ${finding.fix}`);
      if (finding.logs)
        lines.push(
          `    logs:    ${finding.logs}${finding.impact !== undefined ? ` (${finding.impact} messages)` : ''}`,
        );
    }
  }
  const count = (s: Severity) => diagnosis.findings.filter((f) => f.severity === s).length;
  lines.push(
    '',
    `${count('critical')} critical, ${count('warning')} warning, ${count('info')} info from ${diagnosis.checks.length} checks${scope} at ${checkedAt}`,
    ...notChecked,
  );
  return lines;
}
