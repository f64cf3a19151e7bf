import type { BounceClassifier } from './classifier.ts';
import type { ParsedBounce, ParsedRecipient } from './parsed-bounce.ts';
import type { Verdict } from './types.ts';

// Turns a parsed report into one verdict per recipient. Complaints, auto-replies and
// successful-delivery reports are decided by the report's kind; failures by the rule pack.

export interface RecipientVerdict {
  recipient: ParsedRecipient;
  verdict: Verdict;
}

const STATUS_IN_TEXT = /(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)/;

export function classifyBounce(parsed: ParsedBounce, classifier: BounceClassifier): RecipientVerdict[] {
  switch (parsed.kind) {
    case 'arf':
      return parsed.recipients.map((recipient) => ({
        recipient,
        verdict: classifier.verdictFor('feedback', `report.${parsed.format}`),
      }));
    case 'auto_reply':
      return parsed.recipients.map((recipient) => ({
        recipient,
        verdict: classifier.verdictFor('vacation', 'report.rfc3834'),
      }));
    case 'dsn':
      return parsed.recipients.map((recipient) => ({ recipient, verdict: classifyRecipient(recipient, classifier) }));
    default:
      return [];
  }
}

export function classifyRecipient(recipient: ParsedRecipient, classifier: BounceClassifier): Verdict {
  const { action, status } = recipient;
  if (action === 'delivered' || action === 'relayed' || action === 'expanded' || status?.startsWith('2.')) {
    return classifier.verdictFor('delivered', `report.action-${action ?? 'delivered'}`);
  }
  // A generic status (5.0.0, 4.0.0) says less than the one the remote host put in its reply.
  const specific =
    status && /^\d\.0\.0$/.test(status) ? (STATUS_IN_TEXT.exec(recipient.diagnostic)?.[1] ?? status) : status;
  return classifier.classifyReply(
    {
      code: recipient.replyCode ?? null,
      enhanced: specific ?? null,
      text: recipient.diagnostic,
      ...(recipient.phase !== undefined && { phase: recipient.phase }),
      ...(recipient.remoteMta !== undefined && { mxHost: recipient.remoteMta }),
    },
    action ? { action } : undefined,
  );
}
