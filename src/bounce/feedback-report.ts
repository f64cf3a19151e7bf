import type { MessageParts } from './mime-reader.ts';
import type { ParsedRecipient } from './parsed-bounce.ts';
import { cleanAddress, firstField, parseFieldGroups } from './report-fields.ts';

// Complaints: RFC 5965 feedback reports (ISP feedback loops), and the one-click unsubscribe
// mails Apple Mail sends (X-Apple-Unsubscribe), which are an opt-out by the recipient.

/** Recipients of an RFC 5965 report; `originalTo` is the To of the quoted message. */
export function parseFeedbackReport(report: string, originalTo: string | undefined): ParsedRecipient[] {
  const fields = new Map<string, string[]>();
  for (const group of parseFieldGroups(report)) {
    for (const [name, values] of group) fields.set(name, [...(fields.get(name) ?? []), ...values]);
  }
  const feedbackType = (firstField(fields, 'feedback-type') ?? 'abuse').toLowerCase().trim();
  const addresses = [...(fields.get('original-rcpt-to') ?? []), ...(fields.get('removal-recipient') ?? [])]
    .map(cleanAddress)
    .filter((a): a is string => !!a);
  if (addresses.length === 0 && originalTo) addresses.push(originalTo);
  const diagnostic = [
    firstField(fields, 'user-agent'),
    firstField(fields, 'source-ip') && `source ip ${firstField(fields, 'source-ip')}`,
  ]
    .filter(Boolean)
    .join('; ');
  return [...new Set(addresses)].map((recipient) => ({
    recipient,
    diagnostic: `feedback-type ${feedbackType}${diagnostic ? `; ${diagnostic}` : ''}`,
    feedbackType,
  }));
}

export function isUnsubscribeRequest(parts: MessageParts): boolean {
  return /^\s*true\s*$/i.test(parts.headers.get('x-apple-unsubscribe')?.[0] ?? '');
}
