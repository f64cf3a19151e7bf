import type { ParsedRecipient } from './parsed-bounce.ts';
import { cleanAddress } from './report-fields.ts';
import { replyFacts } from './text-report.ts';

// Amazon SES delivers bounce, complaint and delivery notifications as JSON (directly or wrapped
// in an SNS envelope whose "Message" is the JSON as a string) in the body of a plain mail.

export interface SesNotification {
  kind: 'dsn' | 'arf';
  recipients: ParsedRecipient[];
}

// SES bounce sub-types carry the reason when there is no diagnostic code.
const SUBTYPE_TEXT = new Map<string, string>([
  ['NoEmail', 'mailbox does not exist'],
  ['Suppressed', 'address is on the suppression list'],
  ['OnAccountSuppressionList', 'address is on the suppression list'],
  ['MailboxFull', 'mailbox full'],
  ['MessageTooLarge', 'message too large'],
  ['ContentRejected', 'content rejected'],
  ['AttachmentRejected', 'attachment rejected'],
]);

// The JSON is the sender's: a null among the recipients, or an object where text belongs
// ({"toString":1} has no string form), threw, and the inbound role answered 451 to each retry.

/** A JSON value as text: a string or a number as it is, anything else empty. */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

/** The objects of a JSON array; anything else in it (null, a number) is left out. */
function objects(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value)
    ? value.filter((item): item is Record<string, unknown> => typeof item === 'object' && item !== null)
    : [];
}

const MAX_JSON = 512 * 1024;

export function parseSesNotification(text: string): SesNotification | undefined {
  const start = text.indexOf('{');
  if (start < 0 || !/"notificationType"|"eventType"|"Type"\s*:\s*"Notification"/.test(text.slice(0, MAX_JSON)))
    return undefined;
  const end = text.lastIndexOf('}');
  if (end <= start || end - start > MAX_JSON) return undefined;
  let value: unknown;
  try {
    // Mail bodies wrap long lines; SES JSON never contains raw newlines.
    value = JSON.parse(text.slice(start, end + 1).replace(/!?\r?\n ?/g, ''));
  } catch {
    return undefined;
  }
  // biome-ignore lint/suspicious/noExplicitAny: SES JSON is read field by field below, each value coerced with String()/Array.isArray
  let note = value as Record<string, any>;
  if (typeof note?.Message === 'string') {
    try {
      // biome-ignore lint/suspicious/noExplicitAny: as above
      note = JSON.parse(note.Message) as Record<string, any>;
    } catch {
      return undefined;
    }
  }
  const type = asText(note?.notificationType) || asText(note?.eventType);
  if (type === 'Bounce' && Array.isArray(note.bounce?.bouncedRecipients)) {
    const subtype = asText(note.bounce.bounceSubType);
    return {
      kind: 'dsn',
      recipients: objects(note.bounce.bouncedRecipients).flatMap((r) => {
        const recipient = cleanAddress(asText(r.emailAddress));
        if (!recipient) return [];
        const diagnostic = (
          asText(r.diagnosticCode) ||
          SUBTYPE_TEXT.get(subtype) ||
          `${asText(note.bounce.bounceType)} ${subtype}`
        ).replace(/^smtp;\s*/i, '');
        const facts = replyFacts(diagnostic);
        const parsed: ParsedRecipient = { recipient, diagnostic, action: 'failed' };
        const status = asText(r.status) || facts.status;
        if (status) parsed.status = status;
        if (facts.code) parsed.replyCode = facts.code;
        return [parsed];
      }),
    };
  }
  if (type === 'Complaint' && Array.isArray(note.complaint?.complainedRecipients)) {
    return {
      kind: 'arf',
      recipients: objects(note.complaint.complainedRecipients).flatMap((r) => {
        const recipient = cleanAddress(asText(r.emailAddress));
        return recipient
          ? [
              {
                recipient,
                diagnostic: 'complaint',
                feedbackType: asText(note.complaint.complaintFeedbackType) || 'abuse',
              },
            ]
          : [];
      }),
    };
  }
  if (type === 'Delivery' && Array.isArray(note.delivery?.recipients)) {
    const diagnostic = asText(note.delivery.smtpResponse) || '250 OK';
    const facts = replyFacts(diagnostic);
    return {
      kind: 'dsn',
      recipients: (note.delivery.recipients as unknown[]).flatMap((r) => {
        const recipient = cleanAddress(asText(r));
        if (!recipient) return [];
        const parsed: ParsedRecipient = { recipient, diagnostic, action: 'delivered', status: facts.status ?? '2.0.0' };
        if (facts.code) parsed.replyCode = facts.code;
        return [parsed];
      }),
    };
  }
  return undefined;
}
