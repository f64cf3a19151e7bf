// The part of an SMTP reply shaping looks at. Structurally the MTA's SmtpReply (src/mta/smtp-reply.ts)
// fits it, so shaping does not depend on the MTA.

export interface ReplyLike {
  /** Three-digit code, or null when no server answered. */
  code: number | null;
  enhanced: string | null;
  text: string;
  /** Set when the failure happened locally (timeout, refused connection, DNS...). */
  local?: string;
}

/** The qualification of a failed reply (the MTA's Verdict fits it): category is DESIGN.md's vocabulary. */
export interface VerdictLike {
  reason: string;
  category: string;
}

/**
 * Whether a message outcome counts as an error of its domain for the error-density breaker. The
 * bounce qualification decides, not the reply text: `onhold` (greylisting, rules/bounce/default.yaml)
 * defers every first attempt by design, it says "come back later", not "this domain is failing".
 * A failure without a verdict counts as an error.
 */
export function isDomainError(reply: ReplyLike, verdict: VerdictLike | undefined): boolean {
  if (replyClass(reply) === '2xx') return false;
  return verdict?.category !== 'onhold';
}

/** The line backoff patterns are tested against: `<code> <enhanced> <text>` (`421 4.7.0 [TSS04] ...`). */
export function replyLine(reply: ReplyLike): string {
  const code = reply.code === null ? (reply.local ?? 'local') : String(reply.code);
  return [code, reply.enhanced, reply.text].filter((part) => part !== null && part !== undefined && part !== '').join(' ');
}

export type ReplyClass = '2xx' | '4xx' | '5xx' | 'local';

export function replyClass(reply: ReplyLike): ReplyClass {
  if (reply.code === null) return 'local';
  if (reply.code >= 500) return '5xx';
  if (reply.code >= 400) return '4xx';
  return '2xx';
}
