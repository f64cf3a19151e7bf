import { basename } from 'node:path';
import { classifyBounce } from './classify-bounce.ts';
import type { BounceClassifier } from './classifier.ts';
import type { ParsedBounce } from './parsed-bounce.ts';

/**
 * One line of `herald bounce classify --json` (DESIGN.md contract: file, recipient, status,
 * replyCode, category, reason, type; the other fields are additions). `status` and `replyCode`
 * are strings, `""` when the report gives none, as in the shared corpus' expected.json.
 */
export interface BounceReportLine {
  file: string;
  path: string;
  index: number;
  recipient: string | null;
  status: string;
  replyCode: string;
  category: string;
  reason: string;
  type: string;
  action: string | null;
  ruleId: string | null;
  /** The step that decided: a rule id, `enhanced-status`, `reply-code`, `dsn-action`, `report.<format>` or `none`. */
  decidedBy: string;
  packVersion: string | null;
  kind: ParsedBounce['kind'];
  format: string;
  feedbackType?: string;
  logId?: string;
  logIdSource?: 'verp' | 'header';
  diagnostic?: string;
  error?: string;
}

/**
 * The lines of every message of one file (a mailbox holds several): recipients numbered from 1
 * across the file, in order, as the labels of a corpus count them.
 */
export function reportLinesForMessages(
  path: string,
  messages: ParsedBounce[],
  classifier: BounceClassifier,
): BounceReportLine[] {
  if (messages.length === 1) return reportLinesFor(path, messages[0]!, classifier);
  let index = 0;
  return messages.flatMap((parsed) =>
    reportLinesFor(path, parsed, classifier).map((line) => (line.index === 0 ? line : { ...line, index: ++index })),
  );
}

/** One line per failed or notified recipient; a message that is not a bounce gives one `not_bounce` line. */
export function reportLinesFor(path: string, parsed: ParsedBounce, classifier: BounceClassifier): BounceReportLine[] {
  const base = {
    file: basename(path),
    path,
    kind: parsed.kind,
    format: parsed.format,
    packVersion: classifier.version,
    ...(parsed.logId !== undefined && { logId: parsed.logId }),
    ...(parsed.logIdSource !== undefined && { logIdSource: parsed.logIdSource }),
  };
  if (parsed.kind === 'not_bounce' || parsed.kind === 'unparseable') {
    const verdict =
      parsed.kind === 'not_bounce'
        ? { category: 'not_bounce', reason: 'ignored', type: 'ignored' }
        : classifier.verdictFor('undefined', null);
    return [
      {
        ...base,
        index: 0,
        recipient: null,
        status: '',
        replyCode: '',
        category: verdict.category,
        reason: verdict.reason,
        type: verdict.type,
        action: null,
        ruleId: null,
        decidedBy: parsed.kind === 'not_bounce' ? 'report.not_bounce' : 'none',
        ...(parsed.error !== undefined && { error: parsed.error }),
      },
    ];
  }
  const verdicts = classifyBounce(parsed, classifier);
  if (verdicts.length === 0) {
    // A report whose recipients could not be found is still a report: qualify what it says.
    const category = parsed.kind === 'arf' ? 'feedback' : parsed.kind === 'auto_reply' ? 'vacation' : 'undefined';
    const verdict = classifier.verdictFor(category, null);
    return [
      {
        ...base,
        index: 1,
        recipient: null,
        status: '',
        replyCode: '',
        category,
        reason: verdict.reason,
        type: verdict.type,
        action: null,
        ruleId: null,
        decidedBy: category === 'undefined' ? 'none' : `report.${parsed.format}`,
      },
    ];
  }
  return verdicts.map(({ recipient, verdict }, i) => ({
    ...base,
    index: i + 1,
    recipient: recipient.recipient || null,
    status: recipient.status ?? '',
    replyCode: recipient.replyCode !== undefined ? String(recipient.replyCode) : '',
    category: verdict.category,
    reason: verdict.reason,
    type: verdict.type,
    action: recipient.action ?? null,
    ruleId: verdict.ruleId,
    decidedBy: verdict.decidedBy ?? verdict.ruleId ?? 'none',
    packVersion: verdict.packVersion,
    ...(recipient.feedbackType !== undefined && { feedbackType: recipient.feedbackType }),
    diagnostic: recipient.diagnostic.replace(/\s+/g, ' ').trim().slice(0, 300),
  }));
}
