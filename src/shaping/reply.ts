import type { SmtpReply } from '../bounce/smtp-reply.ts';
import type { Verdict } from '../bounce/types.ts';

// What shaping reads of an SMTP reply and its qualification (the one vocabulary of src/bounce/).

/**
 * Whether a message outcome counts as an error of its domain for the error-density breaker. The
 * bounce qualification decides, not the reply text: `onhold` (greylisting, rules/bounce/default.yaml)
 * defers every first attempt by design, it says "come back later", not "this domain is failing".
 * A failure without a verdict counts as an error.
 */
export function isDomainError(reply: SmtpReply, verdict: Verdict | undefined): boolean {
  if (replyClass(reply) === '2xx') return false;
  return verdict?.category !== 'onhold';
}

/** The line backoff patterns are tested against: `<code> <enhanced> <text>` (`421 4.7.0 [TSS04] ...`). */
export function replyLine(reply: SmtpReply): string {
  const code = reply.code === null ? (reply.local ?? 'local') : String(reply.code);
  return [code, reply.enhanced, reply.text]
    .filter((part) => part !== null && part !== undefined && part !== '')
    .join(' ');
}

export type ReplyClass = '2xx' | '4xx' | '5xx' | 'local';

export function replyClass(reply: SmtpReply): ReplyClass {
  if (reply.code === null) return 'local';
  if (reply.code >= 500) return '5xx';
  if (reply.code >= 400) return '4xx';
  return '2xx';
}
